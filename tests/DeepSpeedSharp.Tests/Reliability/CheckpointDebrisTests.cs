using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Tests.Checkpoint;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 9: what interrupted checkpoint saves leave (<c>.tmp-&lt;tag&gt;-&lt;n&gt;</c>, <c>.old-&lt;tag&gt;-&lt;n&gt;</c>,
/// <c>.latest-&lt;n&gt;</c>) is removed by the next successful save. The interrupted save is a rank dying half-way through
/// writing its file (injected through the engine's option, in the test worker).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class CheckpointDebrisTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-debris");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void TheNextSuccessfulSaveRemovesWhatInterruptedSavesLeft()
    {
        var ckpt = Path.Combine(_dir.FullName, "ckpt");
        var crashed = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "crashed.jsonl"), 6, $"--save-dir {ckpt} --save-every 3 --crash-at 6");
        Assert.True(crashed.Ranks[1].ExitCode == 86, crashed.Output);
        // The surviving rank removed the interrupted save's partial copy; a job killed whole would leave one, as here.
        Assert.Empty(Directory.GetDirectories(ckpt, ".tmp-global_step6-*"));
        Directory.CreateDirectory(Path.Combine(ckpt, ".tmp-global_step6-4242"));
        // Debris of other kinds, as a save killed between its renames would leave them.
        File.WriteAllText(Path.Combine(ckpt, ".latest-4242"), "global_step9");
        Directory.CreateDirectory(Path.Combine(ckpt, ".old-global_step3-4242"));

        var resumed = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "resumed.jsonl"), 9, $"--resume {ckpt} --save-dir {ckpt} --save-every 3");
        Assert.True(resumed.Ranks.All(r => r.ExitCode == 0), resumed.Output);
        Assert.Contains("resumed from", resumed.Ranks[0].Stdout);
        Assert.Equal("global_step9", File.ReadAllText(Path.Combine(ckpt, "latest")));
        Assert.Empty(Directory.GetDirectories(ckpt, ".tmp-*"));
        Assert.Empty(Directory.GetDirectories(ckpt, ".old-*"));
        Assert.Empty(Directory.GetFiles(ckpt, ".latest-*"));
        var report = CheckpointInspector.Inspect(ckpt, null, out bool ok);
        Assert.True(ok, report);
        Assert.DoesNotContain("incomplete saves", report);
    }

    /// <summary>
    /// Issue 33 item 4: a save that fails for lack of space (a 16 MiB tmpfs, as root) removes its partial copy, says which
    /// file needed how many bytes and how much was free, and leaves the previous checkpoint and 'latest' as they were.
    /// </summary>
    [Fact]
    public void ASaveThatRunsOutOfSpaceRemovesItsPartialCopyAndSaysWhatItNeeded()
    {
        if (Environment.UserName != "root" || !File.Exists("/bin/mount")) return; // needs root to mount a tmpfs (CI runs as root)
        var disk = Directory.CreateDirectory(Path.Combine(_dir.FullName, "disk")).FullName;
        Assert.Equal(0, ChildProcess.Run("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", disk]).ExitCode);
        try
        {
            var ckpt = Path.Combine(disk, "ckpt");
            // 4.2 M parameters: a 1.1 MB checkpoint at width 32 fits, one at width 262144 (17 MB of module states) does not.
            var small = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "small.jsonl"), 1, $"--save-dir {ckpt} --save-every 1");
            Assert.True(small.Ranks.All(r => r.ExitCode == 0), small.Output);
            var full = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "full.jsonl"), 1, $"--save-dir {Path.Combine(disk, "big")} --save-every 1 --width 262144");
            Assert.All(full.Ranks, r => Assert.Equal(3, r.ExitCode));
            var message = string.Join("\n", full.Ranks.Select(r => r.Stderr));
            Assert.Matches(@"could not write checkpoint file '[\w.]+' \([\d.]+ MB of tensors\) in '[^']+': .*; [\d.]+ MB free there", message);
            Assert.Empty(Directory.GetDirectories(Path.Combine(disk, "big"), ".tmp-*")); // the partial copy is gone
            Assert.Equal("global_step1", File.ReadAllText(Path.Combine(ckpt, "latest"))); // the other checkpoint is untouched
        }
        finally
        {
            ChildProcess.Run("umount", [disk]);
        }
    }

    /// <summary>
    /// Issue 33 item 2: a job killed between the two renames of re-saving the tag 'latest' names (a fixed tag, "last")
    /// leaves no 'last' directory; inspect names the complete copy instead of calling it safe to delete, resuming loads it
    /// and continues exactly as a run that never stopped, and the next save puts it back under its tag.
    /// </summary>
    [Fact]
    public void AKillBetweenTheRenamesOfAReSaveLeavesTheCheckpointLoadable()
    {
        var ckpt = Path.Combine(_dir.FullName, "ckpt");
        var straight = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "straight.jsonl"), 9, "");
        Assert.True(straight.Ranks.All(r => r.ExitCode == 0), straight.Output);
        var crashed = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "crashed.jsonl"), 9, $"--save-dir {ckpt} --save-every 3 --tag last --crash-between-renames 6");
        Assert.True(crashed.Ranks[0].ExitCode == 87, crashed.Output);
        Assert.False(Directory.Exists(Path.Combine(ckpt, "last")));
        Assert.Equal("last", File.ReadAllText(Path.Combine(ckpt, "latest")));
        Assert.Single(Directory.GetDirectories(ckpt, ".old-last-*")); // step 3's copy, renamed away
        var complete = Assert.Single(Directory.GetDirectories(ckpt, ".tmp-last-*")); // step 6's, complete

        var report = CheckpointInspector.Inspect(ckpt, null, out bool ok);
        Assert.True(ok, report);
        Assert.Contains($"its complete copy {Path.GetFileName(complete)} is what loading uses", report);
        Assert.DoesNotContain("safe to delete", report);

        var resumed = CrashingSaveRun.Start(Path.Combine(_dir.FullName, "resumed.jsonl"), 9, $"--resume {ckpt} --save-dir {ckpt} --save-every 3 --tag last");
        Assert.True(resumed.Ranks.All(r => r.ExitCode == 0), resumed.Output);
        Assert.Contains($"resumed from {complete}", resumed.Ranks[0].Stdout);
        Assert.Equal(new[] { 7, 8, 9 }, resumed.Losses.Keys.Order());
        foreach (int step in new[] { 7, 8, 9 }) Assert.Equal(straight.Losses[step], resumed.Losses[step]);
        Assert.True(Directory.Exists(Path.Combine(ckpt, "last")));
        Assert.Empty(Directory.GetDirectories(ckpt, ".tmp-*"));
        Assert.Empty(Directory.GetDirectories(ckpt, ".old-*"));
        Assert.Equal(9, CheckpointManifest.Read(Path.Combine(ckpt, "last")).GlobalSteps);
    }
}
