using DeepSpeedSharp.Comm.Core;
using DeepSpeedSharp.Comm.Liveness;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>
/// The deadlock rule on its own (issue 33 item 3): which ranks can never go on, given what each rank's heartbeat says
/// it runs and waits for. The multi-process cases are in <c>Reliability/DeadlockTests</c>.
/// </summary>
public class DeadlockAnalysisTests
{
    private static PendingOp Coll(int group, long seq, bool blocked, params int[] ranks) => new(seq, new OpLabel("all_reduce", seq, ranks, -1, group), blocked, null);
    private static PendingOp P2P(string name, int peer, bool blocked, int group = 0) => new(100 + peer, new OpLabel(name, -1, [0, 1, 2, 3], peer, group), blocked, null);
    private static PendingOp Creating(int group, params int[] ranks) => new(7, OpLabel.Creating(group, ranks), true, "Program.Main");

    private static int[] Stuck(Dictionary<int, List<PendingOp>> running) => DeadlockAnalysis.Stuck(running).Order().ToArray();

    [Fact]
    public void ACollectiveEveryMemberRunsIsNotADeadlock() =>
        Assert.Empty(Stuck(new() { [0] = [Coll(0, 4, true, 0, 1)], [1] = [Coll(0, 4, true, 0, 1)] }));

    [Fact]
    public void OperationsThatCannotMatchAreOne()
    {
        Assert.Equal([0, 1], Stuck(new() { [0] = [P2P("recv", 1, true)], [1] = [Coll(0, 3, true, 0, 1)] }));
        Assert.Equal([0, 1], Stuck(new() { [0] = [P2P("recv", 1, true)], [1] = [P2P("recv", 0, true)] }));
        Assert.Equal([0, 1], Stuck(new() { [0] = [Coll(1, 0, true, 0, 1)], [1] = [Coll(0, 1, true, 0, 1)] }));   // other group
        Assert.Equal([0, 1], Stuck(new() { [0] = [Coll(0, 5, true, 0, 1)], [1] = [Coll(0, 6, true, 0, 1)] }));   // other number
        Assert.Equal([0, 1], Stuck(new() { [0] = [Creating(2, 0, 1)], [1] = [Coll(0, 1, true, 0, 1)] }));
        Assert.Equal([0, 1], Stuck(new() { [0] = [P2P("recv", 1, true, group: 0)], [1] = [P2P("send", 0, true, group: 3)] })); // another group's channel
    }

    [Fact]
    public void AWaitThatAFreeRankCanEndIsNotOne()
    {
        // Rank 1 computes (nothing blocked), an unknown rank may still come, a send matches the receive (even unwaited).
        Assert.Empty(Stuck(new() { [0] = [P2P("recv", 1, true)], [1] = [] }));
        Assert.Empty(Stuck(new() { [0] = [P2P("recv", 1, true)] }));
        Assert.Empty(Stuck(new() { [0] = [P2P("recv", 1, true)], [1] = [P2P("send", 0, false), P2P("recv", 0, true)] }));
        Assert.Empty(Stuck(new() { [0] = [Creating(2, 0, 1)], [1] = [Creating(2, 0, 1)] }));
        // A chain: 0 waits for 1, which waits in a collective with 2, which computes: all may go on.
        Assert.Empty(Stuck(new() { [0] = [P2P("recv", 1, true)], [1] = [Coll(1, 0, true, 1, 2)], [2] = [] }));
    }

    [Fact]
    public void OnlyTheRanksInTheCycleAreNamed()
    {
        // 0 and 1 wait for each other; 2 waits for 0 (it is stuck behind them); 3 computes.
        var stuck = Stuck(new() { [0] = [P2P("recv", 1, true)], [1] = [P2P("recv", 0, true)], [2] = [P2P("recv", 0, true)], [3] = [] });
        Assert.Equal([0, 1, 2], stuck);
        // A rank with two waiting threads goes on when either can.
        Assert.Empty(Stuck(new() { [0] = [P2P("recv", 1, true), P2P("recv", 3, true)], [1] = [P2P("recv", 0, true)], [3] = [] }));
    }

    [Fact]
    public void PendingOperationsSurviveTheHeartbeatText()
    {
        var ops = new List<PendingOp> { Coll(2, 41, true, 0, 1, 2), P2P("send", 3, false), Creating(4, 0, 3) };
        var beat = RankBeat.Of(120, RankBeat.Text("in all_reduce #41 over ranks 0-2 for 2.0 s", ops));
        Assert.Equal("in all_reduce #41 over ranks 0-2 for 2.0 s", beat.Status);
        Assert.Equal(ops.Select(o => (o.Token, o.Label.ToString(), o.Label.GroupId, o.Blocked, o.CallSite)), beat.Pending.Select(o => (o.Token, o.Label.ToString(), o.Label.GroupId, o.Blocked, o.CallSite)));
        Assert.Equal("new_group (group 4 over ranks 0,3), called at Program.Main", beat.Pending[2].Describe());
        Assert.Equal("plain text", RankBeat.Of(5, "plain text").Status); // a beat of an older build
    }
}
