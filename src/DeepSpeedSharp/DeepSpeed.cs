using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Native;
using DeepSpeedSharp.Schedulers;
using DeepSpeedSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp;

/// <summary>What <see cref="DeepSpeed.Initialize"/> returns: the engine, its optimizer and its scheduler.</summary>
/// <param name="Engine">The training engine.</param>
/// <param name="Optimizer">The optimizer the engine steps (built from the config when none was passed).</param>
/// <param name="LrScheduler">The learning-rate scheduler (from the config or passed in), or null.</param>
public sealed record DeepSpeedInitResult(DeepSpeedEngine Engine, optim.Optimizer? Optimizer, LrScheduler? LrScheduler);

/// <summary>DeepSpeed's entry points (<c>deepspeed.initialize</c>, <c>deepspeed.init_distributed</c>).</summary>
public static partial class DeepSpeed
{
    /// <summary>
    /// Wraps <paramref name="model"/> in a training engine configured by a DeepSpeed JSON config, as
    /// <c>deepspeed.initialize</c> does. <paramref name="config"/> may be a <see cref="DeepSpeedConfig"/>, a file path,
    /// a JSON (or base64 JSON) string, or any object that serialises to the config's JSON.
    /// The optimizer and scheduler come from the arguments when given, else from the config's sections.
    /// Batch keys written as "auto" (or absent) are resolved from <paramref name="trainBatchSize"/>,
    /// <paramref name="trainMicroBatchSizePerGpu"/> and <paramref name="gradientAccumulationSteps"/>.
    /// With <paramref name="seed"/>, the global RNG is seeded with seed + rank after the engine is built.
    /// </summary>
    public static DeepSpeedInitResult Initialize(
        nn.Module model,
        IEnumerable<Parameter>? modelParameters = null,
        optim.Optimizer? optimizer = null,
        LrScheduler? lrScheduler = null,
        object? config = null,
        int? trainBatchSize = null,
        int? trainMicroBatchSizePerGpu = null,
        int? gradientAccumulationSteps = null,
        int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchRuntime.EnsureLoaded();
        var cfg = config switch
        {
            null => throw new ArgumentException("DeepSpeed.Initialize needs a config: a DeepSpeedConfig, a path to a JSON file, a JSON string or an object"),
            DeepSpeedConfig c => c,
            string s => DeepSpeedConfig.Load(s),
            _ => DeepSpeedConfig.FromObject(config),
        };
        foreach (var w in cfg.Warnings) Log.Warn(w);

        int rank = 0, localRank = 0, dpWorld = 1;
        var batch = cfg.ResolveBatchSizes(dpWorld, trainBatchSize, trainMicroBatchSizePerGpu, gradientAccumulationSteps);
        var parameters = (modelParameters ?? model.parameters()).ToList();
        var opt = optimizer ?? EngineOptimizers.CreateOptimizer(cfg, parameters);
        if (optimizer != null && cfg.Optimizer != null)
            throw new ArgumentException("an optimizer was passed to DeepSpeed.Initialize and the config has an \"optimizer\" section; remove one of them");
        var sched = lrScheduler;
        if (sched == null && cfg.Scheduler != null)
        {
            if (opt == null) throw new DeepSpeedConfigException("the config has a \"scheduler\" section but there is no optimizer for it to drive");
            sched = EngineOptimizers.CreateScheduler(cfg.Scheduler, opt);
            foreach (var w in sched.Warnings) Log.Warn(w);
        }
        else if (lrScheduler != null && cfg.Scheduler != null)
        {
            throw new ArgumentException("an lrScheduler was passed to DeepSpeed.Initialize and the config has a \"scheduler\" section; remove one of them");
        }
        var engine = new DeepSpeedEngine(model, opt, sched, cfg, batch, rank, localRank, dpWorld);
        if (seed is { } s0) torch.manual_seed(s0 + rank);
        Log.Info($"engine ready: train_batch_size={batch.TrainBatchSize}, micro_batch={batch.MicroBatchPerGpu}, " +
                 $"gradient_accumulation_steps={batch.GradientAccumulationSteps}, world={dpWorld}, zero_stage={cfg.ZeroOptimization.Stage}");
        return new DeepSpeedInitResult(engine, opt, sched);
    }
}
