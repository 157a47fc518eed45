using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Launcher;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 7: a rank killed while its shared-memory group is being set up (it created the segment, the others
/// have not mapped it yet, so the file is still in /dev/shm) leaves nothing behind: the launcher removes the job's
/// files when the job ends.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class ShmLeakTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-shm-leak");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void ASegmentOfARankKilledDuringSetUpIsRemovedWhenTheJobEnds()
    {
        var pids = Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids")).FullName;
        string port = RankProcesses.FreePort().ToString(CultureInfo.InvariantCulture);
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--master_port", port, "--grace_period", "2",
            DssProcess.Worker, "fault-hold", $"--pid_dir={pids}", "--group_delay=1:30000");
        var ranks = dss.WaitForPids(pids, 2, TimeSpan.FromSeconds(60));
        // Rank 0 creates the new group's segment and waits for rank 1, which sleeps first.
        string? segment = null;
        var sw = Stopwatch.StartNew();
        while (segment == null && sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            segment = Directory.GetFiles("/dev/shm", $"dss-*-{ranks[0]}").FirstOrDefault();
            Thread.Sleep(20);
        }
        Assert.True(segment != null, $"rank 0 made no segment in /dev/shm\n{dss.Output}\n{dss.Error}");
        output.WriteLine($"segment {segment}: {new FileInfo(segment).Length} bytes");
        ProcessTree.Signal(ranks[0], ProcessTree.SigKill);
        sw.Restart();
        Assert.Equal(137, dss.WaitForExit(TimeSpan.FromSeconds(20)));
        output.WriteLine($"rank 0 SIGKILL -> launcher exited and the segment was removed after {sw.Elapsed.TotalSeconds:F2} s");
        Assert.False(File.Exists(segment), $"{segment} leaked\n{dss.Error}");
        Assert.Contains($"removed 1 shared-memory file(s) a rank left behind: {segment}", dss.Error);
    }

    [Fact]
    public void ALaunchRemovesWhatJobsWhoseLauncherWasKilledLeft()
    {
        int dead = DeadPid();
        string Fake(string job, int creator, TimeSpan age)
        {
            var path = $"/dev/shm/dss-{job}-g1-{creator}";
            File.WriteAllBytes(path, new byte[64]);
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
            return path;
        }
        string stale = Fake("0000fa17ed01", dead, TimeSpan.FromHours(1));
        string recent = Fake("0000fa17ed02", dead, TimeSpan.Zero);                  // maybe another pid namespace's, in set-up
        string live = Fake("0000fa17ed03", Environment.ProcessId, TimeSpan.FromHours(1)); // its creator still runs
        try
        {
            using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--no_local_rank", DssProcess.Worker, "launch-probe");
            Assert.Equal(0, dss.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.False(File.Exists(stale));
            Assert.True(File.Exists(recent));
            Assert.True(File.Exists(live));
            Assert.Contains($"removed 1 shared-memory file(s) of earlier jobs whose ranks are gone: {stale}", dss.Error);
        }
        finally
        {
            foreach (var f in new[] { stale, recent, live }) File.Delete(f);
        }
    }

    /// <summary>The pid of a process that has exited.</summary>
    private static int DeadPid()
    {
        using var p = new ChildProcess("true", []);
        p.WaitForExit(TimeSpan.FromSeconds(30));
        return p.Pid;
    }
}
