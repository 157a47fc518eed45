namespace DeepSpeedSharp.Config;

/// <summary>
/// <c>optimizer</c>: the optimizer DeepSpeed builds when the program passes none. <c>type</c> is case-insensitive
/// and normalised to lowercase; DeepSpeedSharp implements "adam", "adamw" and "sgd". <c>params</c> are validated
/// per type.
/// </summary>
public sealed record OptimizerConfig
{
    /// <summary>Normalised type: "adam", "adamw" or "sgd".</summary>
    public string Type { get; init; } = "adam";
    /// <summary><c>lr</c>.</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary><c>betas[0]</c>.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary><c>betas[1]</c>.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary><c>eps</c>.</summary>
    public double Eps { get; init; } = 1e-8;
    /// <summary>
    /// <c>weight_decay</c>. Default 0 (DeepSpeed's FusedAdam / CPU Adam); with <c>torch_adam</c> and AdamW
    /// semantics the default is 0.01, as <c>torch.optim.AdamW</c>.
    /// </summary>
    public double WeightDecay { get; init; }
    /// <summary><c>bias_correction</c>.</summary>
    public bool BiasCorrection { get; init; } = true;
    /// <summary><c>amsgrad</c>.</summary>
    public bool Amsgrad { get; init; }
    /// <summary>
    /// Decoupled weight decay (AdamW). True for "adamw"; for "adam" it is <c>adam_w_mode</c>, whose DeepSpeed default
    /// is <b>true</b> (the engine computes <c>optimizer_name == adamw or adam_w_mode</c>).
    /// </summary>
    public bool AdamWMode { get; init; } = true;
    /// <summary><c>torch_adam</c>: use the plain PyTorch implementation instead of the fused one.</summary>
    public bool TorchAdam { get; init; }
    /// <summary>SGD <c>momentum</c>.</summary>
    public double Momentum { get; init; }
    /// <summary>SGD <c>dampening</c>.</summary>
    public double Dampening { get; init; }
    /// <summary>SGD <c>nesterov</c>.</summary>
    public bool Nesterov { get; init; }
}

/// <summary>
/// <c>scheduler</c>: learning-rate schedule, stepped once per optimizer step. <c>Type</c> is one of "WarmupLR",
/// "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "LRRangeTest" (exact DeepSpeed names); <c>params</c> are validated
/// per type. Defaults are those of <c>deepspeed/runtime/lr_schedules.py</c>.
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>Scheduler name.</summary>
    public string Type { get; init; } = "WarmupLR";
    /// <summary><c>warmup_min_lr</c>.</summary>
    public double WarmupMinLr { get; init; }
    /// <summary><c>warmup_max_lr</c>: WarmupLR: null → the optimizer's lr; WarmupDecayLR: default 0.001.</summary>
    public double? WarmupMaxLr { get; init; }
    /// <summary><c>warmup_num_steps</c>.</summary>
    public int WarmupNumSteps { get; init; } = 1000;
    /// <summary><c>warmup_type</c>: "log" or "linear".</summary>
    public string WarmupType { get; init; } = "log";
    /// <summary><c>total_num_steps</c>: required for WarmupDecayLR and WarmupCosineLR.</summary>
    public int? TotalNumSteps { get; init; }
    /// <summary><c>warmup_min_ratio</c> (WarmupCosineLR).</summary>
    public double WarmupMinRatio { get; init; }
    /// <summary><c>cos_min_ratio</c> (WarmupCosineLR).</summary>
    public double CosMinRatio { get; init; } = 1e-4;
    /// <summary><c>cycle_min_lr</c> (OneCycle, required).</summary>
    public double CycleMinLr { get; init; }
    /// <summary><c>cycle_max_lr</c> (OneCycle, required).</summary>
    public double CycleMaxLr { get; init; }
    /// <summary><c>decay_lr_rate</c> (OneCycle).</summary>
    public double DecayLrRate { get; init; }
    /// <summary><c>cycle_first_step_size</c> (OneCycle).</summary>
    public int CycleFirstStepSize { get; init; } = 2000;
    /// <summary><c>cycle_second_step_size</c> (OneCycle; null → same as the first).</summary>
    public int? CycleSecondStepSize { get; init; }
    /// <summary><c>cycle_first_stair_count</c> (OneCycle).</summary>
    public int CycleFirstStairCount { get; init; }
    /// <summary><c>cycle_second_stair_count</c> (OneCycle; null → same as the first).</summary>
    public int? CycleSecondStairCount { get; init; }
    /// <summary><c>decay_step_size</c> (OneCycle).</summary>
    public int DecayStepSize { get; init; }
    /// <summary><c>cycle_momentum</c> (OneCycle).</summary>
    public bool CycleMomentum { get; init; } = true;
    /// <summary><c>cycle_min_mom</c> (OneCycle).</summary>
    public double CycleMinMom { get; init; } = 0.8;
    /// <summary><c>cycle_max_mom</c> (OneCycle).</summary>
    public double CycleMaxMom { get; init; } = 0.9;
    /// <summary><c>decay_mom_rate</c> (OneCycle).</summary>
    public double DecayMomRate { get; init; }
    /// <summary><c>lr_range_test_min_lr</c> (LRRangeTest).</summary>
    public double LrRangeTestMinLr { get; init; } = 1e-3;
    /// <summary><c>lr_range_test_step_size</c> (LRRangeTest).</summary>
    public int LrRangeTestStepSize { get; init; } = 2000;
    /// <summary><c>lr_range_test_step_rate</c> (LRRangeTest).</summary>
    public double LrRangeTestStepRate { get; init; } = 1.0;
    /// <summary><c>lr_range_test_staircase</c> (LRRangeTest).</summary>
    public bool LrRangeTestStaircase { get; init; }
    /// <summary><c>last_batch_iteration</c>: -1 = fresh start.</summary>
    public int LastBatchIteration { get; init; } = -1;
}
