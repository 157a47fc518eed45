using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// What the samples print when training ends, in one format that tests and <c>dss bench train</c> read:
/// <c>NAME: model state bytes on rank 0: ...</c>, <c>NAME: tokens/s ...</c> and one JSON line per rank <c>NAME: summary {...}</c>.
/// </summary>
public static class SampleReport
{
    /// <summary>The loss of a step is the mean over the whole global batch: every micro-step and every data-parallel rank.</summary>
    public static double MeanOverDataParallelRanks(DeepSpeedEngine engine, double localMean)
    {
        if (engine.DataParallelWorldSize == 1) return localMean;
        using var t = tensor(new[] { localMean }, ScalarType.Float64);
        engine.DataParallelGroup.AllReduce(t, Comm.ReduceOp.Avg);
        return t.item<double>();
    }

    /// <summary>The loss log's <c>grad_norm</c>: the engine's global gradient norm before clipping, null when the step
    /// overflowed (a non-finite norm, the step skipped) or none was taken.</summary>
    public static double? LoggedGradNorm(DeepSpeedEngine engine) =>
        engine.GetGlobalGradNorm() is { } norm && double.IsFinite(norm) ? norm : null;

    /// <summary>Median step time after <paramref name="warmupSteps"/> (NaN without any step).</summary>
    public static double MedianStepSeconds(IReadOnlyList<double> stepTimes, int warmupSteps)
    {
        var measured = stepTimes.Skip(Math.Min(warmupSteps, Math.Max(0, stepTimes.Count - 1))).Order().ToList();
        return measured.Count == 0 ? double.NaN : measured[measured.Count / 2];
    }

    /// <summary>Rank 0's human-readable lines: model-state bytes, bytes sent, tokens/s, peak RSS, saved activations.</summary>
    public static void PrintSummary(string name, DeepSpeedEngine engine, IReadOnlyList<double> stepTimes, int warmupSteps, long tokensPerStep, int checkpointActivations)
    {
        var bytes = engine.ModelStateBytes();
        Console.WriteLine($"{name}: model state bytes on rank 0: parameters {bytes.Parameters}, gradients {bytes.Gradients}, " +
                          $"optimizer state {bytes.OptimizerState}; bytes sent in the last step {engine.BytesSentLastStep}");
        Console.WriteLine($"{name}: traffic of the last step on rank 0: {engine.LastStepTraffic}");
        if (engine.PeakGatheredParameterBytes is { } peak)
            Console.WriteLine($"{name}: peak gathered parameter bytes on rank 0: {peak}");
        double median = MedianStepSeconds(stepTimes, warmupSteps);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: tokens/s {tokensPerStep / median:F0} (median step {median * 1000:F1} ms after {warmupSteps} warm-up steps), peak RSS {PeakRssMiB()} MiB"));
        if (checkpointActivations > 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: activation checkpointing every {checkpointActivations} {(engine is PipelineEngine ? "pipeline layer(s)" : "block(s)")}: " +
                $"peak saved-input bytes {DeepSpeed.Checkpointing.Stats.PeakBytes / 1048576.0:F2} MiB"));
        // The config's comms_logger: DeepSpeed's deepspeed.comm.log_summary() at the end of training.
        if (Comm.Dist.Logger.Enabled) Console.WriteLine($"{name}: communication on rank 0 over the whole run\n{Comm.Dist.Logger.Summary()}");
    }

    /// <summary>One JSON line per rank for tools: <c>NAME: summary {...}</c>, plus <paramref name="extra"/> fields.</summary>
    public static void PrintMachineSummary(string name, DeepSpeedEngine engine, IReadOnlyList<double> stepTimes, int warmupSteps, long tokensPerStep,
        double finalLoss, IReadOnlyDictionary<string, object?>? extra = null)
    {
        double median = MedianStepSeconds(stepTimes, warmupSteps);
        bool measured = !double.IsNaN(median);
        var bytes = engine.ModelStateBytes();
        var fields = new Dictionary<string, object?>
        {
            ["rank"] = engine.GlobalRank, ["world_size"] = engine.Layout.WorldSize, ["data_parallel_size"] = engine.DataParallelWorldSize, ["steps"] = stepTimes.Count, ["warmup_steps"] = warmupSteps,
            ["tokens_per_s"] = measured ? tokensPerStep / median : 0, ["median_step_ms"] = measured ? median * 1000 : 0,
            ["peak_rss_mib"] = PeakRssMiB(), ["parameter_bytes"] = bytes.Parameters, ["gradient_bytes"] = bytes.Gradients,
            ["optimizer_state_bytes"] = bytes.OptimizerState, ["bytes_sent_last_step"] = engine.BytesSentLastStep,
            ["bytes_sent_cross_host_last_step"] = engine.LastStepTraffic.CrossHost,
            // The whole run, start-up included: what a link's counters can be checked against (benchmarks/cluster).
            ["bytes_sent"] = Comm.Dist.Logger.BytesSent, ["bytes_sent_cross_host"] = Comm.Dist.Logger.BytesSentCrossHost,
            ["final_loss"] = double.IsNaN(finalLoss) ? null : finalLoss,
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, object?>()) fields[k] = v;
        Console.WriteLine($"{name}: summary " + JsonSerializer.Serialize(fields));
    }

    /// <summary>Peak resident set size of this process (VmHWM), in MiB.</summary>
    public static long PeakRssMiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        return -1;
    }
}
