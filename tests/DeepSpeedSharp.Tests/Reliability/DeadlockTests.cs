using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 33 item 3: ranks blocked in communication that wait for each other in operations that cannot match — across
/// operation kinds (recv / all_reduce), both receiving, across groups, or one rank alone creating a group — fail within
/// 5 s (the collective timeout is 120 s), each naming every deadlocked rank's pending operation and where it was
/// called; ranks that only look deadlocked for a while (a late send, a wait that another group's collective will end)
/// are not.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class DeadlockTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Goal = TimeSpan.FromSeconds(5);

    private IReadOnlyList<RankResult> Run(string backend, string mode, int ranks = 2)
    {
        var results = RankProcesses.Run("deadlock", ranks, [backend, mode], new RankOptions { Timeout = TimeSpan.FromSeconds(90) });
        foreach (var r in results) output.WriteLine($"{backend} {mode} rank {r.Rank}: {r.Stdout.Trim()}");
        return results;
    }

    /// <summary>Every rank fails with the deadlock error within <see cref="Goal"/>; returns their messages.</summary>
    private static List<string> Deadlocked(IReadOnlyList<RankResult> results)
    {
        var messages = new List<string>();
        foreach (var r in results)
        {
            var line = r.Stdout.Split('\n').SingleOrDefault(l => l.StartsWith("DEADLOCK ", StringComparison.Ordinal));
            Assert.True(line != null, r.ToString());
            int ms = int.Parse(line.Split("after=")[1].Split(' ')[0]);
            Assert.True(ms < Goal.TotalMilliseconds, $"rank {r.Rank} named the deadlock only after {ms} ms: {line}");
            Assert.Contains("failed: deadlock: rank(s) 0,1 are all blocked in communication", line);
            Assert.Contains("look for a collective or send/recv that the ranks call in a different order", line);
            messages.Add(line);
        }
        return messages;
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void ARecvFacingAnAllReduceIsADeadlock(string backend)
    {
        foreach (var m in Deadlocked(Run(backend, "recv-allreduce")))
        {
            Assert.Contains("rank 0 waits in recv from rank 1, called at DeepSpeedSharp.TestWorker.Scenarios.DeadlockScenario.Run (DeadlockScenario.cs:", m);
            Assert.Contains("; rank 1 waits in all_reduce #1 over ranks 0,1, called at DeepSpeedSharp.TestWorker.Scenarios.DeadlockScenario.Run", m);
        }
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void TwoReceivesFacingEachOtherAreADeadlock(string backend)
    {
        foreach (var m in Deadlocked(Run(backend, "recv-recv")))
            Assert.Matches(@"rank 0 waits in recv from rank 1, called at [^;]+; rank 1 waits in recv from rank 0, called at", m);
    }

    [Fact]
    public void CollectivesOnDifferentGroupsAreADeadlock()
    {
        foreach (var m in Deadlocked(Run("shm", "groups")))
            Assert.Matches(@"rank 0 waits in all_reduce #0 over ranks 0,1, called at [^;]+; rank 1 waits in all_reduce #1 over ranks 0,1, called at", m);
    }

    [Fact]
    public void AGroupCreatedOnOneRankOnlyIsADeadlockThatSaysSo()
    {
        foreach (var m in Deadlocked(Run("shm", "newgroup")))
            Assert.Contains("rank 0 waits in new_group (group 1 over ranks 0,1), called at DeepSpeedSharp.TestWorker.Scenarios.DeadlockScenario.Run", m);
    }

    [Theory]
    [InlineData("late-send", 2)]
    [InlineData("chain", 3)]
    [InlineData("closed-neighbour", 3)]
    public void RanksThatOnlyWaitAWhileAreNotCalledDeadlocked(string mode, int ranks)
    {
        var results = Run("shm", mode, ranks);
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.Contains("OK after=", r.Stdout));
    }
}
