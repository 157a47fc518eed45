using System.Diagnostics;
using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>The multi-node runners for real on one machine: pdsh's exec module and OpenMPI's mpirun on localhost.</summary>
[Trait("Tier", "Full")]
public class MultiNodeLaunchTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-multinode");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Hostfile(string text)
    {
        var path = Path.Combine(_dir.FullName, "hosts");
        File.WriteAllText(path, text);
        return path;
    }

    [PdshFact]
    public void PdshExecRunsOneNodeLauncherPerHost()
    {
        var port = RankProcessesPort();
        using var dss = new DssProcess(_dir.FullName, "launch", "-H", Hostfile("hostA slots=2\nhostB slots=2\n"), "--launcher_args", "-R exec",
            "--master_addr", "127.0.0.1", "--master_port", port, "--no_local_rank", DssProcess.Worker, "launch-probe");
        Assert.Equal(0, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        var a = LocalLaunchTests.RankValues(dss.Output, "hostA: ");
        var b = LocalLaunchTests.RankValues(dss.Output, "hostB: ");
        Assert.Equal([0, 1], a.Keys.Order());
        Assert.Equal([2, 3], b.Keys.Order());
        foreach (var (rank, v) in a.Concat(b))
        {
            Assert.Equal(($"{rank}", $"{rank % 2}", "4", "2", $"{rank / 2}", "2"), (v["RANK"], v["LOCAL_RANK"], v["WORLD_SIZE"], v["LOCAL_SIZE"], v["CROSS_RANK"], v["CROSS_SIZE"]));
            Assert.Equal(("127.0.0.1", port), (v["MASTER_ADDR"], v["MASTER_PORT"]));
        }
        Assert.Single(a.Concat(b).Select(kv => kv.Value["DSS_JOB_TOKEN"]).Distinct());
    }

    [PdshFact]
    public void PdshExecRunCompletesAnAllReduceAcrossTwoHosts()
    {
        using var dss = new DssProcess(_dir.FullName, "launch", "-H", Hostfile("hostA slots=2\nhostB slots=2\n"), "--launcher_args", "-R exec",
            "--master_addr", "127.0.0.1", "--master_port", RankProcessesPort(), "--no_local_rank", DssProcess.Worker, "launch-allreduce");
        Assert.True(dss.WaitForExit(TimeSpan.FromSeconds(90)) == 0, dss.Output + dss.Error);
        for (int rank = 0; rank < 4; rank++)
            Assert.Contains($"allreduce ok rank {rank} of 4 backend hierarchical host {(rank < 2 ? "hostA" : "hostB")}", dss.Output);
    }

    private static string RankProcessesPort() => DeepSpeedSharp.Tests.Infrastructure.RankProcesses.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);

    [PdshFact]
    public void PdshExecFailureOnOneHostStopsTheOtherHost()
    {
        var pids = Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids")).FullName;
        using var dss = new DssProcess(_dir.FullName, "launch", "-H", Hostfile("hostA slots=2\nhostB slots=2\n"), "--launcher_args", "-R exec",
            "--master_addr", "127.0.0.1", "--master_port", RankProcessesPort(), "--no_local_rank", DssProcess.Worker, "launch-probe", $"--pid_dir={pids}", "--exit_if_rank=3:3", "--wait_for_pids=4", "--sleep");
        var ranks = dss.WaitForPids(pids, 4, TimeSpan.FromSeconds(60));
        var sw = Stopwatch.StartNew();
        Assert.Equal(3, dss.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
        var deadline = Stopwatch.StartNew();
        while (ranks.Values.Any(ProcessTree.IsAlive) && deadline.Elapsed < TimeSpan.FromSeconds(3)) Thread.Sleep(20);
        Assert.DoesNotContain(ranks.Values, ProcessTree.IsAlive);
        Assert.Contains("host hostB failed with exit code 3", dss.Error);
    }

    [Fact]
    public void PdshDryRunPrintsTheCommandAndEachHostsCommand()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, LaunchRunner.Run(["-H", Hostfile("w0 slots=1\nw1 slots=1\n"), "--master_addr", "10.1.1.1", "--dry-run", DssProcess.Worker],
            ["dss"], stdout, new StringWriter()));
        var lines = stdout.ToString().Trim().Split('\n');
        Assert.StartsWith("PDSH_RCMD_TYPE=ssh pdsh -S -f 1024 -w w0,w1 dss launch --node_launcher", lines[0]);
        Assert.StartsWith("w0: dss launch --node_launcher", lines[1]);
        Assert.Contains("--node_rank=1", lines[2]);
    }

    [OpenMpiFact]
    public void OpenMpiRunnerStartsEveryRankWithItsVariables()
    {
        using var dss = new DssProcess(_dir.FullName, "launch", "-H", Hostfile("localhost slots=2\n"), "--force_multi", "--launcher", "openmpi",
            "--master_port", RankProcessesPort(), "--no_local_rank", DssProcess.Worker, "launch-probe");
        Assert.Equal(0, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        var ranks = LocalLaunchTests.RankValues(dss.Output);
        Assert.Equal([0, 1], ranks.Keys.Order());
        foreach (var (rank, v) in ranks)
            Assert.Equal(($"{rank}", $"{rank}", "2", "127.0.0.1"), (v["RANK"], v["LOCAL_RANK"], v["WORLD_SIZE"], v["MASTER_ADDR"]));
        Assert.Single(ranks.Values.Select(v => v["DSS_JOB_TOKEN"]).Distinct());
    }
}
