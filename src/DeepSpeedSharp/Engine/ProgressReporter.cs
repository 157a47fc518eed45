using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Utils;

namespace DeepSpeedSharp.Engine;

/// <summary>
/// DeepSpeed's <c>steps_per_print</c> report on rank 0: <c>step=N, skipped=K, lr=[...], loss=..., samples/s=...</c>,
/// followed, with <c>wall_clock_breakdown</c>, by the timers accumulated since the previous report.
/// </summary>
internal sealed class ProgressReporter
{
    private readonly int stepsPerPrint;
    private readonly bool wallClockBreakdown;
    private long lastTimestamp = Stopwatch.GetTimestamp();
    private long lastSamples;
    private double lossSum;
    private int lossCount;

    public ProgressReporter(int stepsPerPrint, bool wallClockBreakdown)
    {
        this.stepsPerPrint = stepsPerPrint;
        this.wallClockBreakdown = wallClockBreakdown;
    }

    /// <summary>Remembers a micro-step's (unscaled) loss for the next report.</summary>
    public void RecordLoss(double loss)
    {
        lossSum += loss;
        lossCount++;
    }

    /// <summary>Called after each optimizer step; prints when the step count is a multiple of steps_per_print.</summary>
    public void AfterStep(long globalSteps, long skippedSteps, long globalSamples, IReadOnlyList<double> lrs, WallClockTimers timers)
    {
        if (stepsPerPrint <= 0 || globalSteps % stepsPerPrint != 0) return;
        long now = Stopwatch.GetTimestamp();
        double seconds = (now - lastTimestamp) / (double)Stopwatch.Frequency;
        double samplesPerSecond = seconds > 0 ? (globalSamples - lastSamples) / seconds : 0;
        var ci = CultureInfo.InvariantCulture;
        string lr = string.Join(", ", lrs.Select(x => x.ToString("G6", ci)));
        string loss = lossCount > 0 ? (lossSum / lossCount).ToString("F6", ci) : "n/a";
        Log.Info($"step={globalSteps}, skipped={skippedSteps}, lr=[{lr}], loss={loss}, samples/s={samplesPerSecond.ToString("F2", ci)}");
        var times = timers.TakeMilliseconds();
        if (wallClockBreakdown && times.Count > 0)
            Log.Info("time (ms) | " + string.Join(" | ", times.Select(t => $"{t.Name}: {t.Milliseconds.ToString("F2", ci)}")));
        lastTimestamp = now;
        lastSamples = globalSamples;
        lossSum = 0;
        lossCount = 0;
    }
}
