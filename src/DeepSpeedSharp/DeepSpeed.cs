using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Native;
using DeepSpeedSharp.Precision;
using DeepSpeedSharp.Zero;
using DeepSpeedSharp.Schedulers;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp;

/// <summary>What <see cref="DeepSpeed.Initialize"/> returns: the engine, its optimizer and its scheduler.</summary>
/// <param name="Engine">The training engine (a <see cref="Engine.PipelineEngine"/> for a <see cref="Pipeline.PipelineModule"/>).</param>
/// <param name="Optimizer">The optimizer the engine steps (with ZeRO it works on this rank's partition), or null.</param>
/// <param name="LrScheduler">The learning-rate scheduler (from the config or passed in), or null.</param>
public sealed record DeepSpeedInitResult(DeepSpeedEngine Engine, optim.Optimizer? Optimizer, LrScheduler? LrScheduler)
{
    /// <summary>The loader over this rank's shard of <c>trainingData</c> (null when none was passed).</summary>
    public Data.DeepSpeedDataLoader? TrainingDataLoader => Engine.TrainingDataLoader;

    /// <summary>DeepSpeed's four results, in its order: <c>var (engine, optimizer, trainingDataLoader, lrScheduler) = ...</c>.</summary>
    public void Deconstruct(out DeepSpeedEngine engine, out optim.Optimizer? optimizer, out Data.DeepSpeedDataLoader? trainingDataLoader, out LrScheduler? lrScheduler)
    {
        engine = Engine;
        optimizer = Optimizer;
        trainingDataLoader = TrainingDataLoader;
        lrScheduler = LrScheduler;
    }

    /// <summary>The engine as a <see cref="Engine.PipelineEngine"/> (when the model is a <see cref="Pipeline.PipelineModule"/>).</summary>
    public PipelineEngine PipelineEngine => Engine as PipelineEngine
        ?? throw new InvalidOperationException("the engine is not a pipeline engine: pass a PipelineModule to DeepSpeed.Initialize to train with pipeline parallelism");
}

/// <summary>DeepSpeed's entry points (<c>deepspeed.initialize</c>, <c>deepspeed.init_distributed</c>).</summary>
public static partial class DeepSpeed
{
    /// <summary>
    /// Wraps <paramref name="model"/> in a training engine configured by a DeepSpeed JSON config, as
    /// <c>deepspeed.initialize</c> does. <paramref name="config"/> may be a <see cref="DeepSpeedConfig"/>, a file path,
    /// a JSON (or base64 JSON) string, or any object that serialises to the config's JSON.
    /// <para>The optimizer comes from <paramref name="optimizer"/>, <paramref name="optimizerFactory"/> (called with the
    /// parameters it must optimize — under ZeRO, this rank's flat fp32 partition), or the config's <c>optimizer</c>
    /// section. An <paramref name="optimizer"/> built over the model's parameters is stepped as it is at fp32 ZeRO stage 0;
    /// under ZeRO (and with bf16/fp16 master weights) the engine carries it over to what it optimizes, as DeepSpeed does:
    /// the same type (FusedAdam, DeepSpeedCpuAdam, or TorchSharp's Adam, AdamW, SGD, …), the same parameter groups and
    /// each group's hyper-parameters; the result's <see cref="DeepSpeedInitResult.Optimizer"/> is that optimizer, and an
    /// <paramref name="lrScheduler"/> built over yours drives it. The scheduler comes from
    /// <paramref name="lrScheduler"/>, <paramref name="lrSchedulerFactory"/> or the config's <c>scheduler</c> section.</para>
    /// <para>Distributed training starts here when the launcher's environment says so (<c>Dist.Initialize</c> is called
    /// if nobody called it yet). Batch keys written as "auto" (or absent) are resolved from the batch arguments. With
    /// <paramref name="seed"/>, the global RNG is seeded with seed + rank after the engine is built.</para>
    /// <para>With <paramref name="mpu"/> (e.g. a <see cref="PipelineParallelGrid"/>, or any Megatron-style
    /// <see cref="IModelParallelUnit"/>) the engine works on that topology: batch sizes and ZeRO use its data-parallel
    /// group, the gradient norm is summed over its model-parallel group (each parameter counted once: tensor-parallel
    /// slices on every tensor rank, replicated parameters on tensor rank 0), and checkpoint files are named by its
    /// model-parallel rank. Without it every rank is a data-parallel replica (or <paramref name="dataParallelGroup"/>'s).</para>
    /// <para>With <paramref name="trainingData"/> (e.g. <c>torch.utils.data.TensorDataset(x, y)</c>) the result's
    /// <see cref="DeepSpeedInitResult.TrainingDataLoader"/> iterates this data-parallel rank's shard of it, as DeepSpeed's
    /// <c>training_data</c> does (<see cref="DeepSpeedEngine.DeepSpeedIO"/>).</para>
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
        int? seed = null,
        Func<IEnumerable<Parameter>, optim.Optimizer>? optimizerFactory = null,
        Func<optim.Optimizer, LrScheduler>? lrSchedulerFactory = null,
        ProcessGroup? dataParallelGroup = null,
        IModelParallelUnit? mpu = null,
        utils.data.Dataset<IList<Tensor>>? trainingData = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchRuntime.EnsureLoaded();
        var cfg = ReadConfig(config);
        var world = Dist.IsInitialized ? Dist.World : Dist.Initialize();
        Dist.SetTimeouts(Seconds(cfg.Distributed.TimeoutSeconds), Seconds(cfg.Distributed.HeartbeatTimeoutSeconds), fromConfig: true);
        var pipeline = model as Pipeline.PipelineModule;
        if (pipeline != null)
        {
            if (mpu != null || dataParallelGroup != null)
                throw new ArgumentException("a PipelineModule brings its own topology (its Grid is the mpu): do not pass mpu or dataParallelGroup with it");
            mpu = pipeline.Grid;
        }
        var layout = ParallelLayout.Create(cfg, world, mpu, dataParallelGroup,
            pipeline == null ? null : (pipeline.NumStages, pipeline.VirtualStages), model.parameters().Any(p => p.IsSequenceParallel()));
        layout.Validate();
        if (pipeline != null) cfg = PipelineConfigFor(cfg);
        var group = layout.DataParallelGroup!;
        Log.Rank = Dist.IsInitialized ? Dist.Rank : 0;
        foreach (var w in cfg.Warnings) Log.Warn(w);
        if (cfg.NoEffectKeys.Count > 0)
            Log.Warn($"{cfg.NoEffectKeys.Count} config key(s) have no effect in DeepSpeedSharp:" +
                     string.Concat(cfg.NoEffectKeys.Select(k => $"{Environment.NewLine}  {k}")));
        if (cfg.Bf16.Enabled && Native.CpuFeatures.OfThisMachine() is { Known: true, NativeBf16: false } cpu)
            Log.Warn($"bf16 is enabled, but this CPU ({cpu.Model ?? "unknown model"}) has no native bf16 instructions (AVX-512-BF16 or AMX): " +
                     "libtorch emulates them and bf16 training runs several times slower than fp32 here (~10× for the GPT sample); fp32 may be the faster choice on this machine");
        var comms = cfg.CommsLogger;
        if (comms.Enabled) Dist.Logger.Configure(comms.Enabled, comms.Verbose, comms.ProfAll, comms.ProfOps);

        var batch = layout.ResolveBatchSizes(trainBatchSize, trainMicroBatchSizePerGpu, gradientAccumulationSteps);
        var precision = PrecisionPolicy.From(cfg);
        var subset = modelParameters == null ? null : NamesOf(model, modelParameters);
        var prePartitioned = ZeroInit.TakeAll(model);
        // A user's optimizer is read by parameter name before a 16-bit cast replaces the parameter objects.
        var client = optimizer != null && StrategyFactory.KeepsMasters(cfg, precision) ? Optim.ClientOptimizer.Capture(model, optimizer) : null;
        if (precision.IsReducedPrecision) ConvertKeepingAttributes(model, precision.ModelDType);
        var named = TrainableParameters(model, subset);
        if (pipeline != null && named.Count == 0)
            throw new ArgumentException($"pipeline stage {pipeline.StageId} (layers {pipeline.LocalStart}..{pipeline.LocalStop - 1}) has no trainable parameters: " +
                                        "choose a partition that gives every stage some (e.g. partitionMethod \"parameters\") or fewer stages");
        var factory = OptimizerChoice.Resolve(cfg, optimizer, optimizerFactory);
        layout.CreateGroups();
        Training.ITrainingStrategy? strategy = null;
        LrScheduler? sched;
        DeepSpeedEngine engine;
        try
        {
            strategy = factory == null ? null : StrategyFactory.Create(model, cfg, named, client, factory, group, precision, prePartitioned,
                ModelParallelGradients.From(layout), layout);
            if (strategy is Training.ICheckpointableStrategy checkpointable) checkpointable.Precision = precision;
            sched = SchedulerChoice.Resolve(cfg, strategy?.Optimizer, lrScheduler, lrSchedulerFactory, client?.Client);
            engine = pipeline != null
                ? new PipelineEngine(pipeline, strategy, sched, cfg, batch, precision, layout)
                : new DeepSpeedEngine(model, strategy, sched, cfg, batch, precision, layout);
        }
        catch
        {
            // No engine owns them yet: the groups the layout and the strategy created go with this failure.
            strategy?.Dispose();
            layout.Dispose();
            throw;
        }
        engine.AttachMonitoring();
        if (trainingData != null) engine.TrainingDataLoader = engine.DeepSpeedIO(trainingData);
        if (seed is { } s0) torch.manual_seed(s0 + group.GlobalRank);
        Log.Info($"engine ready: train_batch_size={batch.TrainBatchSize}, micro_batch={batch.MicroBatchPerGpu}, " +
                 $"gradient_accumulation_steps={batch.GradientAccumulationSteps}, layout {layout}, precision={precision}, backend={group.Backend}" +
                 (Zero.Offload.OptimizerOffloaded(cfg) ? ", optimizer offloaded to the CPU" : ""));
        return new DeepSpeedInitResult(engine, strategy?.Optimizer, sched);
    }

    /// <summary>
    /// Casts the model to the training dtype (no autocast in TorchSharp: the model computes in 16 bits). The cast replaces
    /// the parameter objects, so their tensor/sequence-parallel attributes are carried over by name.
    /// </summary>
    private static void ConvertKeepingAttributes(nn.Module model, ScalarType dtype)
    {
        var attributes = model.named_parameters().Select(p => (p.name, Attributes: p.parameter.GetParallelAttributes())).ToList();
        model.to(dtype);
        var byName = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, a) in attributes)
            if (byName.TryGetValue(name, out var p)) p.SetParallelAttributes(a);
    }

    /// <summary>
    /// The config a pipeline trains with (the layout has refused ZeRO-3): overlap_comm is turned off, because the pipeline
    /// reduces gradients at its ReduceGrads instruction, after every micro-batch's backward.
    /// </summary>
    private static DeepSpeedConfig PipelineConfigFor(DeepSpeedConfig cfg)
    {
        return cfg.ZeroOptimization.OverlapComm ? cfg.WithZeroOptimization(cfg.ZeroOptimization with { OverlapComm = false }) : cfg;
    }

    private static TimeSpan? Seconds(double? s) => s is { } v ? TimeSpan.FromSeconds(v) : null;

    private static DeepSpeedConfig ReadConfig(object? config) => config switch
    {
        null => throw new ArgumentException("DeepSpeed.Initialize needs a config: a DeepSpeedConfig, a path to a JSON file, a JSON string or an object"),
        DeepSpeedConfig c => c,
        string s => DeepSpeedConfig.Load(s),
        _ => DeepSpeedConfig.FromObject(config),
    };

    /// <summary>The trainable parameters with their names, in the module's order (the order gradients are reduced in).</summary>
    private static List<(string Name, Parameter Param)> TrainableParameters(nn.Module model, HashSet<string>? subset) =>
        model.named_parameters().Select(p => (p.name, p.parameter))
            .Where(p => p.parameter.requires_grad && (subset == null || subset.Contains(p.name))).ToList();

    /// <summary>Names of the given parameters (names survive the dtype conversion; parameter objects do not).</summary>
    private static HashSet<string> NamesOf(nn.Module model, IEnumerable<Parameter> parameters)
    {
        var handles = parameters.Select(p => p.Handle).ToHashSet();
        var names = model.named_parameters().Where(p => handles.Contains(p.parameter.Handle)).Select(p => p.name).ToHashSet();
        if (names.Count != handles.Count)
            throw new ArgumentException("modelParameters contains parameters that are not the model's own parameters");
        return names;
    }
}
