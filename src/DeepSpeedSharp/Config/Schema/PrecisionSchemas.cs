
namespace DeepSpeedSharp.Config.Schema;

/// <summary>Schema tables of <c>bf16</c>, <c>fp16</c> and <c>data_types</c> (DeepSpeed's <c>precision_config.py</c>).</summary>
internal static class PrecisionSchemas
{
    public static readonly SectionSchema<Bf16Config> Bf16 = new SectionSchema<Bf16Config>(() => new())
        .Add(
            Fields<Bf16Config>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<Bf16Config>.Of("immediate_grad_update", Kinds.Bool, c => c.ImmediateGradUpdate, (c, v) => c with { ImmediateGradUpdate = v }),
            Fields<Bf16Config>.Of("check_grad_overflow", Kinds.Bool, c => c.CheckGradOverflow, (c, v) => c with { CheckGradOverflow = v }).Deprecated("check_overflow"),
            Fields<Bf16Config>.Of("bf16_master_weights_and_grads", Kinds.Bool, c => c.Bf16MasterWeightsAndGrads, (c, v) => c with { Bf16MasterWeightsAndGrads = v }),
            Fields<Bf16Config>.Of("bf16_optimizer_states", Kinds.Bool, c => c.Bf16OptimizerStates, (c, v) => c with { Bf16OptimizerStates = v }));

    public static readonly SectionSchema<Fp16Config> Fp16 = new SectionSchema<Fp16Config>(() => new())
        .Add(
            Fields<Fp16Config>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<Fp16Config>.Of("auto_cast", Kinds.Bool, c => c.AutoCast, (c, v) => c with { AutoCast = v }),
            Fields<Fp16Config>.Of("loss_scale", Kinds.Double(min: 0), c => c.LossScale, (c, v) => c with { LossScale = v }),
            Fields<Fp16Config>.Of("initial_scale_power", Kinds.Int(min: 0, max: 126), c => c.InitialScalePower, (c, v) => c with { InitialScalePower = v }),
            Fields<Fp16Config>.Of("loss_scale_window", Kinds.Int(min: 1), c => c.LossScaleWindow, (c, v) => c with { LossScaleWindow = v }),
            Fields<Fp16Config>.Of("hysteresis", Kinds.Int(min: 1), c => c.Hysteresis, (c, v) => c with { Hysteresis = v }),
            Fields<Fp16Config>.Of("consecutive_hysteresis", Kinds.Bool, c => c.ConsecutiveHysteresis, (c, v) => c with { ConsecutiveHysteresis = v }),
            Fields<Fp16Config>.Of("min_loss_scale", Kinds.Double(min: 0, minExclusive: true), c => c.MinLossScale, (c, v) => c with { MinLossScale = v }),
            Fields<Fp16Config>.Of("fp16_master_weights_and_grads", Kinds.Bool, c => c.Fp16MasterWeightsAndGrads, (c, v) => c with { Fp16MasterWeightsAndGrads = v }));

    public static readonly SectionSchema<DataTypesConfig> DataTypes = new SectionSchema<DataTypesConfig>(() => new())
        .Add(
            Fields<DataTypesConfig>.Of("grad_accum_dtype", Kinds.Dtype, c => c.GradAccumDtype, (c, v) => c with { GradAccumDtype = v }),
            Fields<DataTypesConfig>.Of("param_dtype", Kinds.Dtype, c => c.ParamDtype, (c, v) => c with { ParamDtype = v }),
            Fields<DataTypesConfig>.Of("buffer_dtype", Kinds.Dtype, c => c.BufferDtype, (c, v) => c with { BufferDtype = v }));
}
