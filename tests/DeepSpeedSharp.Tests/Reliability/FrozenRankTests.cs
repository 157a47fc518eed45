using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Launcher;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 4: a frozen rank (stopped: no heartbeat) is told from a slow one (alive, still computing). A stopped
/// rank is named as the cause within the heartbeat timeout; a slow one is waited for, and when it outlasts the
/// collective timeout every rank's place (which collective and its number, or computing since when) is reported.
/// Each case prints its measured detection time.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Trait("Tier", "Full")]
public class FrozenRankTests(ITestOutputHelper output) : IDisposable
{
    private const double HeartbeatSeconds = 3;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-frozen");
    private string Pids => Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids")).FullName;
    private static string Port() => RankProcesses.FreePort().ToString(CultureInfo.InvariantCulture);

    public void Dispose() => _dir.Delete(recursive: true);

    private DssProcess Launch(double? heartbeatSeconds, params string[] workerArgs)
    {
        var env = new Dictionary<string, string>();
        if (heartbeatSeconds is { } h) env["DSS_HEARTBEAT_TIMEOUT"] = h.ToString(CultureInfo.InvariantCulture);
        return new DssProcess(_dir.FullName, env, ["launch", "--num_gpus", "2", "--master_port", Port(), DssProcess.Worker, "fault-hold", $"--pid_dir={Pids}", .. workerArgs]);
    }

    /// <summary>
    /// SIGSTOPs <paramref name="victim"/> once both ranks run; returns the launcher's exit code and the seconds from the
    /// stop to its exit. Prints the seconds from the stop to the rank's error naming the frozen rank, too.
    /// </summary>
    private (int Code, double Seconds) Freeze(DssProcess dss, int victim, string what)
    {
        var pids = dss.WaitForPids(Pids, 2, TimeSpan.FromSeconds(90));
        Thread.Sleep(1500); // a few all-reduces and heartbeats
        ProcessTree.Signal(pids[victim], ProcessTree.SigStop);
        var sw = Stopwatch.StartNew();
        while (!dss.Error.Contains(" froze (", StringComparison.Ordinal) && sw.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
        double named = sw.Elapsed.TotalSeconds;
        int code = dss.WaitForExit(TimeSpan.FromSeconds(60));
        foreach (var p in pids.Values) ProcessTree.Signal(p, ProcessTree.SigKill); // never leave a stopped process behind
        output.WriteLine($"{what}: SIGSTOP -> frozen rank named {named:F2} s, launcher exit {sw.Elapsed.TotalSeconds:F2} s (heartbeat timeout {HeartbeatSeconds} s)");
        return (code, sw.Elapsed.TotalSeconds);
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void AStoppedRankIsNamedFrozenWithinTheHeartbeatTimeout(string backend)
    {
        using var dss = Launch(HeartbeatSeconds, $"--backend={backend}");
        var (code, seconds) = Freeze(dss, victim: 1, $"{backend}: rank 1");
        string err = dss.Error;
        Assert.True(code == 1, $"exit {code}\n{dss.Output}\n{err}");
        Assert.InRange(seconds, HeartbeatSeconds - 1, HeartbeatSeconds + 10);
        Assert.Matches(@"\[dss launch\] rank 1 \(pid \d+, node 0\) froze: it sent no heartbeat; its process was stopped \(SIGSTOP", err);
        Assert.Matches(@"rank 0 \(pid \d+, node 0\) failed: all_reduce #\d+ over ranks 0,1 on rank 0 failed: rank\(s\) 1 froze \(stopped, e\.g\. by SIGSTOP or a debugger, or its host is gone\): rank 1 sent no heartbeat for [\d.]+ s; its last heartbeat, [\d.]+ s ago, said: in all_reduce #\d+ over ranks 0,1 for [\d.]+ s|its last heartbeat, [\d.]+ s ago, said: computing: its last operation, all_reduce #\d+", err);
        Assert.DoesNotContain("timed out", err);
        Assert.DoesNotContain("SIGABRT", err);
        output.WriteLine(err);
    }

    [Fact]
    public void AStoppedStoreHostIsNamedFrozen()
    {
        using var dss = Launch(HeartbeatSeconds, "--backend=tcp");
        var (code, seconds) = Freeze(dss, victim: 0, "tcp: rank 0 (the store's host)");
        string err = dss.Error;
        Assert.True(code == 1, $"exit {code}\n{dss.Output}\n{err}");
        Assert.InRange(seconds, HeartbeatSeconds - 1, HeartbeatSeconds + 12);
        Assert.Matches(@"\[dss launch\] rank 0 \(pid \d+, node 0\) froze: it sent no heartbeat; its process was stopped", err);
        Assert.Matches(@"rank 1 \(pid \d+, node 0\) failed: all_reduce #\d+ over ranks 0,1 on rank 1 failed: rank\(s\) 0 froze", err);
        Assert.Contains("the rendezvous store it hosts does not answer", err);
        output.WriteLine(err);
    }

    [Fact]
    public void ASlowRankIsWaitedForAndNotCalledFrozen()
    {
        // Rank 1 computes for twice the heartbeat timeout inside a 60 s collective timeout: alive, so the job goes on.
        using var dss = Launch(2, "--slow=1:4500", "--iterations=8", "--timeout=60");
        int code = dss.WaitForExit(TimeSpan.FromSeconds(90));
        Assert.True(code == 0, $"exit {code}\n{dss.Output}\n{dss.Error}");
        Assert.Contains("fault-hold rank 0 done", dss.Output);
        Assert.Contains("fault-hold rank 1 done", dss.Output);
        Assert.DoesNotContain("froze", dss.Error);
    }

    [Fact]
    public void ASlowRankPastTheCollectiveTimeoutIsReportedWithWhereEachRankIs()
    {
        using var dss = Launch(null, "--slow=1:60000", "--timeout=3");
        var sw = Stopwatch.StartNew();
        int code = dss.WaitForExit(TimeSpan.FromSeconds(90));
        output.WriteLine($"collective timeout 3 s with a rank computing for 60 s: launcher exit after {sw.Elapsed.TotalSeconds:F1} s from start");
        string err = dss.Error;
        Assert.True(code == 1, $"exit {code}\n{dss.Output}\n{err}");
        Assert.Matches(@"rank 0: all_reduce #4 over ranks 0,1 on rank 0 timed out after 00:00:03 waiting for rank\(s\) 1\. Where each rank of the group is: " +
                       @"rank 0: in all_reduce #4 over ranks 0,1 for [\d.]+ s, called at DeepSpeedSharp\.TestWorker\.Scenarios\.FaultHoldScenario\.Run \(FaultHoldScenario\.cs:\d+\) \(as of its heartbeat [\d.]+ s ago\); " +
                       @"rank 1: computing: its last operation, all_reduce #3 over ranks 0,1, ended [\d.]+ s ago \(as of its heartbeat [\d.]+ s ago\)\. " +
                       @"Ranks that keep beating are slow, not frozen: raise the collective timeout \(config distributed\.timeout_seconds", err);
        Assert.DoesNotContain("froze (", err);
        output.WriteLine(err);
    }

    [Fact]
    public void TheConfigsDistributedSectionSetsTheTimeouts()
    {
        var config = Path.Combine(_dir.FullName, "ds.json");
        File.WriteAllText(config, """
            {"train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "SGD", "params": {"lr": 0.1}},
             "distributed": {"timeout_seconds": 100, "heartbeat_timeout_seconds": 3}}
            """);
        using var dss = Launch(null, "--backend=tcp", $"--ds_config={config}");
        var (code, seconds) = Freeze(dss, victim: 1, "tcp, timeouts from the config: rank 1");
        string err = dss.Error;
        Assert.True(code == 1, $"exit {code}\n{dss.Output}\n{err}");
        Assert.Contains("timeouts: collective 100 s, heartbeat 3 s", dss.Output);
        Assert.InRange(seconds, HeartbeatSeconds - 1, HeartbeatSeconds + 10);
        Assert.Matches(@"\[dss launch\] rank 1 \(pid \d+, node 0\) froze: it sent no heartbeat; its process was stopped", err);
    }

    [PdshFact]
    public void ARankFrozenOnAnotherHostIsNamedByTheHostThatNoticed()
    {
        var hosts = Path.Combine(_dir.FullName, "hosts");
        File.WriteAllText(hosts, "hostA slots=1\nhostB slots=1\n");
        var env = new Dictionary<string, string> { ["DSS_HEARTBEAT_TIMEOUT"] = HeartbeatSeconds.ToString(CultureInfo.InvariantCulture) };
        using var dss = new DssProcess(_dir.FullName, env, "launch", "-H", hosts, "--launcher_args", "-R exec", "--master_addr", "127.0.0.1",
            "--master_port", Port(), "--grace_period", "2", DssProcess.Worker, "fault-hold", $"--pid_dir={Pids}");
        var (code, seconds) = Freeze(dss, victim: 1, "pdsh, 2 hosts, tcp: rank 1 on hostB");
        string all = dss.Output + dss.Error;
        Assert.True(code != 0, $"exit {code}\n{all}");
        Assert.InRange(seconds, HeartbeatSeconds - 1, HeartbeatSeconds + 15);
        Assert.Contains("rank 1 (on another node) froze: it sent no heartbeat (its process is stopped or its host is gone); it is the cause.", all);
        Assert.Matches(@"rank\(s\) 1 froze \(stopped, e\.g\. by SIGSTOP or a debugger, or its host is gone\): rank 1 sent no heartbeat for [\d.]+ s", all);
        output.WriteLine(all);
    }
}
