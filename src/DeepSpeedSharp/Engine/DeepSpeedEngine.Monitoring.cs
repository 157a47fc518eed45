using System.Globalization;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Monitoring;
using DeepSpeedSharp.Profiling;
using DeepSpeedSharp.Utils;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>The engine's monitoring: config monitors (csv_monitor, tensorboard), token counting for the throughput line, and the flops profiler.</summary>
public partial class DeepSpeedEngine
{

    /// <summary>
    /// DeepSpeed's <c>engine.monitor</c>: the monitors enabled by the config, active on global rank 0 only. After each
    /// optimizer step the engine writes <c>Train/Samples/train_loss</c> (mean of the step's micro-batch losses on rank 0,
    /// at the samples count before the step, as DeepSpeed does), <c>Train/Samples/lr</c>, <c>Train/Samples/loss_scale</c> (fp16) and, with
    /// <c>wall_clock_breakdown</c>, <c>Train/Samples/elapsed_time_ms_{forward,backward,backward_inner,backward_allreduce,step}</c>
    /// every <c>steps_per_print</c> steps.
    /// </summary>
    public MonitorMaster Monitor { get; private set; } = MonitorMaster.Disabled;

    /// <summary>The flops profiler when <c>flops_profiler.enabled</c> (runs on rank 0 at <c>profile_step</c>); add counters for custom modules here.</summary>
    public FlopsProfiler? FlopsProfiler { get; private set; }

    /// <summary>The text of the last flops-profiler report, or null.</summary>
    public string? LastFlopsReport { get; private set; }

    /// <summary>Called once by <see cref="DeepSpeed.Initialize"/>: builds the monitors and the profiler and subscribes to <see cref="StepCompleted"/>.</summary>
    internal void AttachMonitoring()
    {
        Monitor = MonitorMaster.FromConfig(Config, GlobalRank);
        foreach (var m in Monitor.Monitors) Log.Info($"{m.Kind} writing to {m.LogDirectory}");
        if (Module is nn.Module<Tensor, Tensor> root)
            root.register_forward_pre_hook((_, input) =>
            {
                if (input.dtype is ScalarType.Int64 or ScalarType.Int32) progress.AddTokens(input.numel() * DataParallelWorldSize);
                return null!;
            });
        if (Config.FlopsProfiler.Enabled) FlopsProfiler = new FlopsProfiler(Module);
        StepCompleted += OnStepMonitoring;
    }

    private void OnStepMonitoring(StepMetrics m)
    {
        if (Monitor.Enabled) Monitor.WriteEvents(StepEvents(m));
        if (FlopsProfiler == null || GlobalRank != 0) return;
        if (FlopsProfiler.Started)
        {
            FlopsProfiler.StopProfile();
            WriteFlopsReport(m);
        }
        else if (m.GlobalSteps == Config.FlopsProfiler.ProfileStep)
        {
            FlopsProfiler.StartProfile();
        }
    }

    private List<MonitorEvent> StepEvents(StepMetrics m)
    {
        var events = new List<MonitorEvent>();
        if (!double.IsNaN(m.Loss)) events.Add(new("Train/Samples/train_loss", m.Loss, m.GlobalSamples - TrainBatchSize));
        if (m.LearningRates.Count > 0) events.Add(new("Train/Samples/lr", m.LearningRates[0], m.GlobalSamples));
        if (Precision.Scaler is not null) events.Add(new("Train/Samples/loss_scale", Precision.LossScale, m.GlobalSamples));
        var (step, times) = progress.LastBreakdown;
        if ((Config.WallClockBreakdown || Config.FlopsProfiler.Enabled) && step == m.GlobalSteps)
            foreach (var t in times) events.Add(new($"Train/Samples/elapsed_time_ms_{t.Name}", t.Milliseconds, m.GlobalSamples));
        return events;
    }

    private void WriteFlopsReport(StepMetrics m)
    {
        var cfg = Config.FlopsProfiler;
        var run = new FlopsRunInfo(m.GlobalSteps - 1, Dist.IsInitialized ? Dist.WorldSize : 1, DataParallelWorldSize,
            (long)TrainMicroBatchSizePerGpu * GradientAccumulationSteps, TimeSpan.FromSeconds(m.StepSeconds), cfg.PeakTflops is { } peak && peak > 0 ? peak * 1e12 : null, cfg.RecomputeFwdFactor);
        LastFlopsReport = FlopsReport.Format(FlopsProfiler!.GetProfile(), run, new FlopsReportOptions(cfg.ModuleDepth, cfg.TopModules, cfg.Detailed));
        if (cfg.OutputFile is { Length: > 0 } file)
        {
            File.WriteAllText(file, LastFlopsReport);
            Log.Info($"flops profile of step {run.Step} written to {Path.GetFullPath(file)}");
        }
        else Console.Out.Write(LastFlopsReport);
    }
}
