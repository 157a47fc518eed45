namespace DeepSpeedSharp.Config;

/// <summary><c>bf16</c> (alias <c>bfloat16</c>): bfloat16 mixed precision (DeepSpeed's <c>precision_config.py</c>).</summary>
public sealed record Bf16Config
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>immediate_grad_update</c>: apply gradient accumulation into fp32 as soon as each grad is ready.</summary>
    public bool ImmediateGradUpdate { get; init; }
    /// <summary><c>check_grad_overflow</c> (deprecated name <c>check_overflow</c>): skip steps with inf/nan gradients.</summary>
    public bool CheckGradOverflow { get; init; } = true;
    /// <summary><c>bf16_master_weights_and_grads</c> (needs ZeRO ≥ 1).</summary>
    public bool Bf16MasterWeightsAndGrads { get; init; }
    /// <summary><c>bf16_optimizer_states</c> (needs ZeRO ≥ 1 and <see cref="Bf16MasterWeightsAndGrads"/>).</summary>
    public bool Bf16OptimizerStates { get; init; }
}

/// <summary><c>fp16</c>: float16 mixed precision with loss scaling.</summary>
public sealed record Fp16Config
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>auto_cast</c> (rejected when true: not implemented).</summary>
    public bool AutoCast { get; init; }
    /// <summary><c>loss_scale</c>: 0 = dynamic loss scaling, otherwise a static scale.</summary>
    public double LossScale { get; init; }
    /// <summary><c>initial_scale_power</c>: the dynamic scale starts at 2^this.</summary>
    public int InitialScalePower { get; init; } = 16;
    /// <summary><c>loss_scale_window</c>: steps without overflow before the scale grows.</summary>
    public int LossScaleWindow { get; init; } = 1000;
    /// <summary><c>hysteresis</c>: overflows tolerated before the scale shrinks.</summary>
    public int Hysteresis { get; init; } = 2;
    /// <summary><c>consecutive_hysteresis</c>.</summary>
    public bool ConsecutiveHysteresis { get; init; }
    /// <summary><c>min_loss_scale</c>.</summary>
    public double MinLossScale { get; init; } = 1;
    /// <summary><c>fp16_master_weights_and_grads</c> (needs ZeRO ≥ 1).</summary>
    public bool Fp16MasterWeightsAndGrads { get; init; }
}

/// <summary>
/// <c>data_types</c>. Values are normalised to "fp32", "fp16" or "bf16" (DeepSpeed's spellings such as
/// "float32", "float", "half", "bfloat16" are accepted); null = not set.
/// </summary>
public sealed record DataTypesConfig
{
    /// <summary><c>grad_accum_dtype</c>: dtype gradients are accumulated in ("fp32" with bf16 + ZeRO-1 selects the BF16 optimizer).</summary>
    public string? GradAccumDtype { get; init; }
    /// <summary><c>param_dtype</c>.</summary>
    public string? ParamDtype { get; init; }
    /// <summary><c>buffer_dtype</c>.</summary>
    public string? BufferDtype { get; init; }
}
