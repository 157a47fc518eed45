using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Utils;

namespace DeepSpeedSharp.Engine;

/// <summary>
/// DeepSpeed's <c>steps_per_print</c> report on rank 0: <c>step=N, skipped=K, lr=[...], loss=... (this rank, mean of M
/// micro-step(s)), samples/s=...</c>
/// plus tokens/s (when token ids were counted; both throughputs only while <c>timers.throughput.enabled</c>) and the
/// process's resident memory (RSS, peak RSS), followed, with <c>wall_clock_breakdown</c>, by the timers accumulated since
/// the previous report, and with <c>memory_breakdown</c> by the model-state bytes of this rank.
/// </summary>
internal sealed class ProgressReporter
{
    private readonly int stepsPerPrint;
    private readonly bool wallClockBreakdown;
    private readonly bool throughput;
    private readonly Func<DeepSpeedSharp.Training.ModelStateBytes>? memoryBreakdown;
    private long lastTimestamp = Stopwatch.GetTimestamp();
    private long lastSamples;
    private double lossSum;
    private int lossCount;
    private long tokens, lastTokens;

    /// <summary>The timers taken at the last report and the global step of that report (for the monitors).</summary>
    public (long Step, IReadOnlyList<(string Name, double Milliseconds, int Count)> Times) LastBreakdown { get; private set; } = (0, []);

    /// <summary>Counts token ids fed to the model (the engine's forward pre-hook calls this).</summary>
    public void AddTokens(long count) => tokens += count;

    /// <param name="stepsPerPrint"><c>steps_per_print</c>.</param>
    /// <param name="wallClockBreakdown"><c>wall_clock_breakdown</c>.</param>
    /// <param name="throughput"><c>timers.throughput.enabled</c>: report samples/s and tokens/s.</param>
    /// <param name="memoryBreakdown"><c>memory_breakdown</c>: the model-state bytes to report, or null.</param>
    public ProgressReporter(int stepsPerPrint, bool wallClockBreakdown, bool throughput = true,
        Func<DeepSpeedSharp.Training.ModelStateBytes>? memoryBreakdown = null)
    {
        this.stepsPerPrint = stepsPerPrint;
        this.wallClockBreakdown = wallClockBreakdown;
        this.throughput = throughput;
        this.memoryBreakdown = memoryBreakdown;
    }

    /// <summary>What one recorded loss stands for in the report ("micro-step(s)"; a pipeline records one per batch).</summary>
    public string LossUnit { get; set; } = "micro-step(s)";

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
        // Labelled: a training loop's own step loss is usually the mean over every rank's micro-batches of one step.
        string loss = lossCount > 0 ? $"{(lossSum / lossCount).ToString("F6", ci)} (this rank, mean of {lossCount} {LossUnit})" : "n/a";
        string tps = tokens > lastTokens && seconds > 0 ? $", tokens/s={((tokens - lastTokens) / seconds).ToString("F0", ci)}" : "";
        long rssMiB = Environment.WorkingSet >> 20, peakMiB = Process.GetCurrentProcess().PeakWorkingSet64 >> 20;
        string speed = throughput ? $", samples/s={samplesPerSecond.ToString("F2", ci)}{tps}" : "";
        Log.Info($"step={globalSteps}, skipped={skippedSteps}, lr=[{lr}], loss={loss}{speed}, RSS={rssMiB} MiB (peak {peakMiB} MiB)");
        if (memoryBreakdown?.Invoke() is { } m)
            Log.Info($"memory (MiB, this rank) | parameters: {Mib(m.Parameters)} | gradients: {Mib(m.Gradients)} | optimizer state: {Mib(m.OptimizerState)} " +
                     $"| model states: {Mib(m.Parameters + m.Gradients + m.OptimizerState)} | RSS: {rssMiB} | peak RSS: {peakMiB}");
        var times = timers.TakeMilliseconds();
        LastBreakdown = (globalSteps, times);
        if (wallClockBreakdown && times.Count > 0)
            Log.Info("time (ms) | " + string.Join(" | ", times.Select(t => $"{t.Name}: {t.Milliseconds.ToString("F2", ci)}")));
        lastTimestamp = now;
        lastSamples = globalSamples;
        lastTokens = tokens;
        lossSum = 0;
        lossCount = 0;
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
}
