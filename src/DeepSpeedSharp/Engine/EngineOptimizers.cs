using DeepSpeedSharp.Config;
using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Schedulers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>Turns the config's <c>optimizer</c> and <c>scheduler</c> sections into objects.</summary>
internal static class EngineOptimizers
{
    /// <summary>The optimizer named by the config, or null when the config has no optimizer section.</summary>
    public static optim.Optimizer? CreateOptimizer(DeepSpeedConfig config, IReadOnlyList<Parameter> parameters)
    {
        if (config.Optimizer is not { } o) return null;
        var trainable = parameters.Where(p => p.requires_grad).ToList();
        if (trainable.Count == 0) throw new ArgumentException("the model has no trainable parameters (every parameter has requires_grad = false)");
        var precision = Precision.PrecisionPolicy.From(config);
        bool masters16 = precision.MasterDType != ScalarType.Float32;
        if (masters16 && o.TorchAdam && o.Type is "adam" or "adamw" && !precision.LowPrecisionOptimizerStates)
            throw new DeepSpeedConfigException("16-bit master weights (bf16_master_weights_and_grads / fp16_master_weights_and_grads) without bf16.bf16_optimizer_states keep the Adam moments in fp32, " +
                "but torch_adam's Adam/AdamW keep them in the parameters' dtype; set optimizer.params.torch_adam to false (or, with bf16, bf16.bf16_optimizer_states to true)");
        // With ZeRO-Offload, DeepSpeed builds DeepSpeedCPUAdam for Adam/AdamW (unless torch_adam asks for torch's). Its
        // kernel updates fp32 masters; 16-bit masters are stepped by FusedAdam on the host instead.
        var offload = config.ZeroOptimization.OffloadOptimizer;
        if (offload.Enabled && o.Type is "adam" or "adamw" && !o.TorchAdam && !masters16)
            return new Optim.CpuAdam.DeepSpeedCpuAdam(trainable, o.Lr, o.BiasCorrection, o.Beta1, o.Beta2, o.Eps, o.WeightDecay,
                o.Amsgrad, o.Type == "adamw" || o.AdamWMode, threads: CpuAdamThreads(offload.CpuadamCoresPerc));
        return OptimizerFactory.Create(o.Type, trainable, o.Lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.BiasCorrection,
            o.Amsgrad, o.AdamWMode, o.TorchAdam, o.Momentum, o.Dampening, o.Nesterov, precision.LowPrecisionOptimizerStates,
            stochasticRounding: precision.MasterDType == ScalarType.BFloat16, noiseSeed: Comm.Dist.IsInitialized ? Comm.Dist.Rank : 0);
    }

    /// <summary><c>offload_optimizer.cpuadam_cores_perc</c>: the CPU Adam's threads, that fraction of the host's cores (at least one).</summary>
    internal static int CpuAdamThreads(double coresFraction) =>
        Math.Max(1, (int)Math.Round(Environment.ProcessorCount * coresFraction, MidpointRounding.AwayFromZero));

    /// <summary>The scheduler named by the config's <c>scheduler.type</c>, driving <paramref name="optimizer"/>.</summary>
    public static LrScheduler CreateScheduler(SchedulerConfig s, optim.Optimizer optimizer)
    {
        int TotalSteps() => s.TotalNumSteps ?? throw new DeepSpeedConfigException(
            $"scheduler.params.total_num_steps is required by the {s.Type} scheduler");
        return s.Type switch
        {
            "WarmupLR" => new WarmupLR(optimizer, s.WarmupMinLr, s.WarmupMaxLr, s.WarmupNumSteps, s.WarmupType, s.LastBatchIteration),
            "WarmupDecayLR" => new WarmupDecayLR(optimizer, TotalSteps(), s.WarmupMinLr, s.WarmupMaxLr ?? 0.001,
                s.WarmupNumSteps, s.WarmupType, s.LastBatchIteration),
            "WarmupCosineLR" => new WarmupCosineLR(optimizer, TotalSteps(), s.WarmupMinRatio, s.WarmupNumSteps, s.CosMinRatio,
                s.WarmupType, s.LastBatchIteration),
            "OneCycle" => new OneCycle(optimizer, s.CycleMinLr, s.CycleMaxLr, s.DecayLrRate, s.CycleFirstStepSize,
                s.CycleSecondStepSize, s.CycleFirstStairCount, s.CycleSecondStairCount, s.DecayStepSize, s.CycleMomentum,
                s.CycleMinMom, s.CycleMaxMom, s.DecayMomRate, s.LastBatchIteration),
            "LRRangeTest" => new LRRangeTest(optimizer, s.LrRangeTestMinLr, s.LrRangeTestStepSize, s.LrRangeTestStepRate,
                s.LrRangeTestStaircase, s.LastBatchIteration),
            _ => throw new DeepSpeedConfigException(
                $"scheduler.type '{s.Type}' is not supported; use WarmupLR, WarmupDecayLR, WarmupCosineLR, OneCycle or LRRangeTest"),
        };
    }
}
