using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>The sample GPT's forward keeps far less memory with checkpointing (fresh worker processes, so RSS is clean).</summary>
[Trait("Tier", "Full")]
public class CheckpointingMemoryTests
{
    private static Dictionary<string, double> Measure(int every)
    {
        var run = ChildProcess.Dotnet([RankProcesses.WorkerDll, "checkpointing-memory", $"{every}", "256", "4", "4", "128", "2"], timeout: TimeSpan.FromSeconds(120));
        Assert.False(run.TimedOut, "checkpointing-memory did not finish in 120 s");
        string stdout = run.Stdout;
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}\n{stdout}\n{run.Stderr}");
        var line = stdout.Split('\n').Single(l => l.StartsWith("every=", StringComparison.Ordinal));
        return line.Split(' ').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void CheckpointingEveryBlockKeepsOnlyTheBlockInputs()
    {
        var plain = Measure(0);
        var ckpt = Measure(1);
        Assert.Equal(0, plain["checkpoint_saved_peak_mib"]);
        Assert.Equal(4 * 4 * 256 * 128 * 4 / 1048576.0, ckpt["checkpoint_saved_peak_mib"], 2); // 4 blocks × B·T·C floats
        // The plain graph keeps every block's activations (attention scores are B·H·T² per block): ~66 MiB here,
        // against ~8 MiB with checkpointing (block inputs, logits, loss).
        Assert.True(ckpt["retained_after_forward_mib"] < 0.4 * plain["retained_after_forward_mib"],
            $"retained after forward: {ckpt["retained_after_forward_mib"]} MiB with checkpointing vs {plain["retained_after_forward_mib"]} MiB without");
    }
}
