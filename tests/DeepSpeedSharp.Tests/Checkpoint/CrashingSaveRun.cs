using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>The test worker's `checkpoint-crash` scenario on 2 ranks: training with saves, optionally with the last rank
/// dying half-way through writing one of them (injected through the engine's AfterRankFileWritten option).</summary>
internal sealed record CrashingSaveRun(IReadOnlyList<RankResult> Ranks, Dictionary<int, double> Losses)
{
    /// <summary>Runs until <paramref name="steps"/>; <paramref name="extraArgs"/> e.g. "--save-dir D --save-every 3 --crash-at 6".</summary>
    public static CrashingSaveRun Start(string lossLog, int steps, string extraArgs)
    {
        var args = new[] { "--steps", steps.ToString(), "--stage", "1", "--out", lossLog }.Concat(extraArgs.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var ranks = RankProcesses.Run("checkpoint-crash", 2, args, new RankOptions { Timeout = TimeSpan.FromSeconds(120) });
        var losses = File.Exists(lossLog)
            ? File.ReadAllLines(lossLog).Select(l => JsonDocument.Parse(l).RootElement)
                .ToDictionary(e => e.GetProperty("step").GetInt32(), e => e.GetProperty("loss").GetDouble())
            : new Dictionary<int, double>();
        return new CrashingSaveRun(ranks, losses);
    }

    /// <summary>Everything the ranks printed.</summary>
    public string Output => string.Join("\n", Ranks.Select(r => r.ToString()));
}
