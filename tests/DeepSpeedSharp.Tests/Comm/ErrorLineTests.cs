using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>Issue 33 item 9: one rank prefix per line, and one way of naming an operation in every message.</summary>
public class ErrorLineTests
{
    [Fact]
    public void AMessageThatNamesItsRankIsNotPrefixedTwice()
    {
        var line = UnhandledErrors.Describe(0, new InvalidOperationException("rank 0: backend 'mpi' needs ranks started by mpirun"));
        Assert.Equal("[dss] error: rank 0: backend 'mpi' needs ranks started by mpirun (unhandled InvalidOperationException)", line);
        Assert.Equal("[dss] error: rank 1: rank 0: x (unhandled ArgumentException)", UnhandledErrors.Describe(1, new ArgumentException("rank 0: x")));
        Assert.Equal("all_reduce failed", UnhandledErrors.WithoutRankPrefix(3, "rank 3: rank 3: all_reduce failed"));
    }

    [Fact]
    public void OperationsAreNamedAsTheHeartbeatNamesThem()
    {
        Assert.Equal("all_reduce #15 over ranks 0-3", new OpLabel("all_reduce", 15, [0, 1, 2, 3], -1, 0).ToString());
        Assert.Equal("all_gather #2 over ranks 0,2", new OpLabel("all_gather", 2, [0, 2], -1, 4).ToString());
        Assert.Equal("recv from rank 1", new OpLabel("recv", -1, [0, 1], 1, 0).ToString());
        Assert.Equal("send to rank 3", new OpLabel("send", -1, [2, 3], 3, 1).ToString());
        // A hierarchical backend's internal step keeps the operation's label; errors carry its number.
        var ctx = new OpContext("all_reduce", 7, default, DateTime.UtcNow, new OpLabel("all_reduce", 15, [0, 1, 2, 3], -1, 0));
        Assert.Equal(15, ctx.ErrorSeq);
        Assert.Equal(4, (ctx with { Seq = 4, Label = new OpLabel("recv", -1, [0, 1], 1, 0) }).ErrorSeq);
    }
}
