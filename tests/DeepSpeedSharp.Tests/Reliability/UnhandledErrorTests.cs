using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// A rank that dies of an exception nobody caught: one line with the message and the exception type, exit code 1,
/// and the launcher reports that line as the cause (not "SIGABRT: it was killed", not a stack trace) — unless the
/// exception type points at a bug, which keeps its stack trace.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class UnhandledErrorTests : IDisposable
{
    private readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("dss-unhandled");

    public void Dispose() => dir.Delete(recursive: true);

    private DssProcess Launch(string kind) => new(dir.FullName, "launch", "--num_gpus", "2", "--master_port", RankProcesses.FreePort().ToString(),
        DssProcess.Worker, "throw", "1", kind, "the value 7 for 'x' is not accepted");

    [Fact]
    public void AUsersMistakeEndsTheRankWithOneLineThatTheLauncherQuotesAsTheCause()
    {
        using var dss = Launch("argument");
        Assert.Equal(1, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        string all = dss.Output + dss.Error;
        Assert.Contains("[rank 1] [dss] error: rank 1: the value 7 for 'x' is not accepted (unhandled ArgumentException)", all);
        Assert.Matches(@"rank 1 \(pid \d+, node 0\) failed: the value 7 for 'x' is not accepted \(unhandled ArgumentException\)", dss.Error);
        Assert.Contains("exited with code 1;", dss.Error);
        Assert.DoesNotContain("SIGABRT", all);
        Assert.DoesNotContain("   at ", all); // no stack trace
        Assert.DoesNotContain("Unhandled exception.", all);
    }

    [Fact]
    public void ABugKeepsItsStackTrace()
    {
        using var dss = Launch("null");
        Assert.Equal(1, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        string all = dss.Output + dss.Error;
        Assert.Contains("[dss] error: rank 1: the value 7 for 'x' is not accepted (unhandled NullReferenceException)", all);
        Assert.Contains("   at DeepSpeedSharp.TestWorker.Scenarios.ThrowScenario.Run", all);
        Assert.DoesNotContain("SIGABRT", all);
    }
}
