using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 33 item 9: a peer that finished normally (exit code 0) while another rank still waits for it is reported as
/// finished, with its last operation — the ranks ran different numbers of operations — not as "died". When the rank
/// that finished is rank 0 (its store is gone with it), the launcher adds that it had finished.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class PeerExitTests : IDisposable
{
    private readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("dss-peer-exit");

    public void Dispose() => dir.Delete(recursive: true);

    private DssProcess Launch(string backend, string more) => new(dir.FullName, "launch", "--num_gpus", "2", "--master_port", RankProcesses.FreePort().ToString(),
        DssProcess.Worker, "fault-hold", "--iterations=3", $"--more={more}", $"--backend={backend}");

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void APeerThatFinishedIsNotCalledDead(string backend)
    {
        using var dss = Launch(backend, "0:2");
        Assert.Equal(1, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("[dss] error: rank 0: all_reduce #3 over ranks 0,1 on rank 0 failed: rank 1 exited with code 0 after its last operation, all_reduce #2 over ranks 0,1. " +
                        "A rank that finished while another still waits for it means the ranks ran different numbers of operations", dss.Output + dss.Error);
        Assert.DoesNotContain("died", dss.Output + dss.Error);
    }

    [Fact]
    public void WhenRankZeroFinishedTheLauncherSaysSo()
    {
        using var dss = Launch("shm", "1:2");
        Assert.Equal(1, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("all_reduce #3 over ranks 0,1 on rank 1 failed: rank 0 is gone (its process ended; how is unknown", dss.Error);
        Assert.Contains("[dss launch] rank(s) 0 had already finished (exit code 0): if rank 1 waited for them, the ranks ran different numbers of operations.", dss.Error);
    }
}
