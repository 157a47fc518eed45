using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Launcher;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 1: a launcher killed with SIGKILL takes its ranks with it, on every backend and runner: the ranks'
/// parent-death signal (local runs, node launchers), the rank's ancestor check under a wrapper script, and the guard
/// between the runner and pdsh/mpirun. Each case prints the measured time from the kill to the last process gone.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Trait("Tier", "Full")]
public class LauncherDeathTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(8);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-launcher-death");
    private string Pids => Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids")).FullName;
    private static string Port() => RankProcesses.FreePort().ToString(CultureInfo.InvariantCulture);

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>SIGKILLs the launcher once <paramref name="ranks"/> ranks are up; asserts every process it had started is gone within the bound.</summary>
    private void KillLauncherAndExpectEveryRankGone(DssProcess dss, int ranks, string what)
    {
        var pids = dss.WaitForPids(Pids, ranks, TimeSpan.FromSeconds(90));
        Thread.Sleep(300); // let the ranks run a few all-reduces
        var tree = ProcessTree.WithDescendants(dss.Pid).Where(p => p != dss.Pid).Concat(pids.Values).Distinct().ToList();
        Assert.All(pids.Values, p => Assert.True(ProcessTree.IsAlive(p)));
        ProcessTree.Signal(dss.Pid, ProcessTree.SigKill);
        var sw = Stopwatch.StartNew();
        while (pids.Values.Any(ProcessTree.IsAlive) && sw.Elapsed < Bound) Thread.Sleep(10);
        var ranksGone = sw.Elapsed;
        while (tree.Any(ProcessTree.IsAlive) && sw.Elapsed < Bound) Thread.Sleep(10);
        output.WriteLine($"{what}: launcher SIGKILL -> ranks gone {ranksGone.TotalSeconds:F2} s, every process gone {sw.Elapsed.TotalSeconds:F2} s");
        var orphans = tree.Where(ProcessTree.IsAlive).ToList();
        foreach (var p in orphans) ProcessTree.Signal(p, ProcessTree.SigKill); // no orphans left behind by a failing test
        Assert.True(orphans.Count == 0,
            $"{what}: still alive {sw.Elapsed.TotalSeconds:F1} s after the launcher was killed: {string.Join(", ", orphans)}\nstdout:\n{dss.Output}\nstderr:\n{dss.Error}");
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void LocalRanksDieWithTheirLauncher(string backend)
    {
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--master_port", Port(), DssProcess.Worker,
            "fault-hold", $"--pid_dir={Pids}", $"--backend={backend}");
        KillLauncherAndExpectEveryRankGone(dss, 2, $"local {backend}");
    }

    [Fact]
    public void RanksUnderAWrapperScriptDieWithTheirLauncher()
    {
        var script = Path.Combine(_dir.FullName, "wrap.sh");
        File.WriteAllText(script, $"#!/bin/sh\ndotnet {DssProcess.Worker} \"$@\"\n"); // no exec: the shell stays the rank's parent
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--master_port", Port(), script, "fault-hold", $"--pid_dir={Pids}");
        KillLauncherAndExpectEveryRankGone(dss, 2, "local shm under a wrapper script");
    }

    [PdshFact]
    public void PdshNodeLaunchersAndTheirRanksDieWithTheRunner()
    {
        var hosts = Path.Combine(_dir.FullName, "hosts");
        File.WriteAllText(hosts, "hostA slots=2\nhostB slots=2\n");
        using var dss = new DssProcess(_dir.FullName, "launch", "-H", hosts, "--launcher_args", "-R exec", "--master_addr", "127.0.0.1",
            "--master_port", Port(), "--grace_period", "2", DssProcess.Worker, "fault-hold", $"--pid_dir={Pids}");
        KillLauncherAndExpectEveryRankGone(dss, 4, "pdsh (exec), hierarchical");
    }

    [OpenMpiFact]
    public void OpenMpiRanksDieWithTheRunner()
    {
        var hosts = Path.Combine(_dir.FullName, "hosts");
        File.WriteAllText(hosts, "localhost slots=2\n");
        using var dss = new DssProcess(_dir.FullName, "launch", "-H", hosts, "--force_multi", "--launcher", "openmpi", "--master_port", Port(),
            "--grace_period", "2", DssProcess.Worker, "fault-hold", $"--pid_dir={Pids}");
        KillLauncherAndExpectEveryRankGone(dss, 2, "openmpi");
    }
}
