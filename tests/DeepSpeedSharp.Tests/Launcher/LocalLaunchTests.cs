using System.Diagnostics;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>`dss launch` on one machine, for real: rank environments, fail-fast, signals, logs, --local_rank.</summary>
[Trait("Tier", "Full")]
public class LocalLaunchTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-launch");
    private string Pids => Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids")).FullName;

    public void Dispose() => _dir.Delete(recursive: true);

    internal static Dictionary<int, Dictionary<string, string>> RankValues(string output, string linePrefix = "")
    {
        var result = new Dictionary<int, Dictionary<string, string>>();
        foreach (Match m in Regex.Matches(output, "^" + Regex.Escape(linePrefix) + @"\[rank (\d+)\] ([A-Z_]+)=(.*)$", RegexOptions.Multiline))
        {
            int rank = int.Parse(m.Groups[1].Value);
            if (!result.TryGetValue(rank, out var d)) result[rank] = d = [];
            d[m.Groups[2].Value] = m.Groups[3].Value.TrimEnd('\r');
        }
        return result;
    }

    private static void AssertAllGone(IEnumerable<int> pids)
    {
        var sw = Stopwatch.StartNew();
        while (pids.Any(ProcessTree.IsAlive) && sw.Elapsed < TimeSpan.FromSeconds(2)) Thread.Sleep(20);
        Assert.DoesNotContain(pids, ProcessTree.IsAlive);
    }

    [Fact]
    public void FourLocalRanksGetDeepSpeedsVariables()
    {
        // A free port: the launcher checks it can bind the port, so a fixed one could meet a concurrent test run.
        var port = DeepSpeedSharp.Tests.Infrastructure.RankProcesses.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "4", "--no_local_rank", "--master_port", port, DssProcess.Worker, "launch-probe");
        Assert.Equal(0, dss.WaitForExit(TimeSpan.FromSeconds(60)));
        var ranks = RankValues(dss.Output);
        Assert.Equal([0, 1, 2, 3], ranks.Keys.Order());
        foreach (var (rank, v) in ranks)
        {
            Assert.Equal(($"{rank}", $"{rank}", "4", "4", "0", "1"), (v["RANK"], v["LOCAL_RANK"], v["WORLD_SIZE"], v["LOCAL_SIZE"], v["CROSS_RANK"], v["CROSS_SIZE"]));
            Assert.Equal(("127.0.0.1", port), (v["MASTER_ADDR"], v["MASTER_PORT"]));
            Assert.Matches("^[0-9a-f]{32}$", v["DSS_JOB_TOKEN"]);
        }
        Assert.Single(ranks.Values.Select(v => v["DSS_JOB_TOKEN"]).Distinct());
    }

    [Fact]
    public void FourLocalRanksRunAnAllReduceProgram()
    {
        var port = DeepSpeedSharp.Tests.Infrastructure.RankProcesses.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "4", "--master_port", port, DssProcess.Worker, "launch-allreduce");
        Assert.True(dss.WaitForExit(TimeSpan.FromSeconds(60)) == 0, dss.Output + dss.Error);
        for (int rank = 0; rank < 4; rank++) Assert.Contains($"allreduce ok rank {rank} of 4 backend shm", dss.Output);
    }

    [Fact]
    public void RankExitingWithThreeStopsTheOthersAndTheLauncherExitsThree()
    {
        var pids = Pids;
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "4", "--no_local_rank", DssProcess.Worker,
            "launch-probe", $"--pid_dir={pids}", "--exit_if_rank=2:3", "--wait_for_pids=4", "--sleep");
        var ranks = dss.WaitForPids(pids, 4, TimeSpan.FromSeconds(60));
        var sw = Stopwatch.StartNew();
        Assert.Equal(3, dss.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        AssertAllGone(ranks.Values);
        Assert.Contains($"rank 2 (pid {ranks[2]}, node 0) exited with code 3; stopped the 3 other rank(s)", dss.Error);
        Assert.Contains("|   rank 2 fails on purpose with code 3".Replace("|   ", "| "), dss.Error);
    }

    [Fact]
    public void RankKilledWithSigkillStopsTheOthersAndTheLauncherExits137()
    {
        var pids = Pids;
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "3", "--no_local_rank", DssProcess.Worker,
            "launch-probe", $"--pid_dir={pids}", "--sleep");
        var ranks = dss.WaitForPids(pids, 3, TimeSpan.FromSeconds(60));
        ProcessTree.Signal(ranks[1], ProcessTree.SigKill);
        var sw = Stopwatch.StartNew();
        Assert.Equal(137, dss.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
        AssertAllGone(ranks.Values);
        Assert.Contains("rank 1", dss.Error);
        Assert.Contains("SIGKILL", dss.Error);
    }

    [Fact]
    public void SigintToTheLauncherStopsEveryRank()
    {
        var pids = Pids;
        using var dss = DssProcess.ListeningForSigint(_dir.FullName, "launch", "--num_gpus", "2", "--no_local_rank", "--grace_period", "2", DssProcess.Worker,
            "launch-probe", $"--pid_dir={pids}", "--sleep");
        var ranks = dss.WaitForPids(pids, 2, TimeSpan.FromSeconds(60));
        ProcessTree.Signal(dss.Pid, ProcessTree.SigInt);
        Assert.Equal(130, dss.WaitForExit(TimeSpan.FromSeconds(10)));
        AssertAllGone(ranks.Values);
        Assert.Contains("received SIGINT", dss.Error);
    }

    [Fact]
    public void ExecutableGetsLocalRankFirst_DeepSpeedEnvIsExported_EachRankLogsToItsFile()
    {
        var script = Path.Combine(_dir.FullName, "probe.sh");
        File.WriteAllText(script, "#!/bin/sh\necho \"args=$*\"\necho \"FOO=$FOO\"\necho \"rank=$RANK\" >&2\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(_dir.FullName, ".deepspeed_env"), "FOO=bar=baz qux\n");
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--enable_each_rank_log", "logs", "./probe.sh", "--x", "a b");
        Assert.Equal(0, dss.WaitForExit(TimeSpan.FromSeconds(30)));
        var logs = Directory.GetFiles(Path.Combine(_dir.FullName, "logs")).Order().ToList();
        Assert.Equal(2, logs.Count);
        Assert.Matches(@"^\d{14}_rank1\.log$", Path.GetFileName(logs[1]));
        var text = File.ReadAllText(logs[1]);
        Assert.Contains("args=--local_rank=1 --x a b", text);
        Assert.Contains("FOO=bar=baz qux", text);
        Assert.Contains("rank=1", text);
        Assert.DoesNotContain("[rank", dss.Output);
    }

    [Fact]
    public void DryRunPrintsEachRanksCommand()
    {
        var stdout = new StringWriter();
        int code = LaunchRunner.Run(["--num_gpus", "2", "--dry-run", DssProcess.Worker, "x"], ["dss"], stdout, new StringWriter());
        Assert.Equal(0, code);
        var lines = stdout.ToString().Trim().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("rank 1: ", lines[1]);
        Assert.Contains("RANK=1", lines[1]);
        Assert.EndsWith($"dotnet {DssProcess.Worker} --local_rank=1 x", lines[1].TrimEnd());
    }

    [Fact]
    public void ReportShowsVersionsNativeStatusAndBackends()
    {
        using var dss = new DssProcess(_dir.FullName, "report");
        Assert.Equal(0, dss.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Matches(@"TorchSharp native libraries \.+ loaded", dss.Output);
        Assert.Matches(@"TorchSharp \.+ 0\.107\.0", dss.Output);
        Assert.Matches(@"libtorch package \.+ libtorch-cpu-linux-x64/2\.10\.0", dss.Output);
        Assert.Matches(@"shm \.+ available", dss.Output);
        Assert.Matches(@"OpenMPI \.+ (found|not found)", dss.Output);
        Assert.Matches(@"logical cores \.+ " + Environment.ProcessorCount, dss.Output);
    }
}
