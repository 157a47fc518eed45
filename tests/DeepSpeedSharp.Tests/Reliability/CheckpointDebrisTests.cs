using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Tests.Checkpoint;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 9: what interrupted checkpoint saves leave (<c>.tmp-&lt;tag&gt;-&lt;n&gt;</c>, <c>.old-&lt;tag&gt;-&lt;n&gt;</c>,
/// <c>.latest-&lt;n&gt;</c>) is removed by the next successful save, and the sample's <c>--loss-log</c> of a killed run
/// keeps every step it logged (one flush per line).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class CheckpointDebrisTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-debris");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void TheNextSuccessfulSaveRemovesWhatInterruptedSavesLeftAndAKilledRunKeepsItsLossLog()
    {
        var ckpt = _dir.FullName;
        var crashed = CheckpointRun.Start(2, 1, 6, $"--save-dir {ckpt} --save-every 3",
            new Dictionary<string, string> { [CheckpointSaver.CrashVariable] = "6" }, expectSuccess: false);
        Assert.NotEqual(0, crashed.ExitCode);
        Assert.NotEmpty(Directory.GetDirectories(ckpt, ".tmp-global_step6-*")); // the interrupted save's debris
        Assert.Equal([1, 2, 3, 4, 5, 6], crashed.Losses.Keys.Order()); // rank 0 was stopped, its log kept every step
        // Debris of other kinds, as a save killed between its renames would leave them.
        File.WriteAllText(Path.Combine(ckpt, ".latest-4242"), "global_step9");
        Directory.CreateDirectory(Path.Combine(ckpt, ".old-global_step3-4242"));

        var resumed = CheckpointRun.Start(2, 1, 9, $"--resume {ckpt} --save-dir {ckpt} --save-every 3");
        Assert.Contains("resumed from", resumed.Output);
        Assert.Equal("global_step9", File.ReadAllText(Path.Combine(ckpt, "latest")));
        Assert.Empty(Directory.GetDirectories(ckpt, ".tmp-*"));
        Assert.Empty(Directory.GetDirectories(ckpt, ".old-*"));
        Assert.Empty(Directory.GetFiles(ckpt, ".latest-*"));
        var report = CheckpointInspector.Inspect(ckpt, null, out bool ok);
        Assert.True(ok, report);
        Assert.DoesNotContain("incomplete saves", report);
    }
}
