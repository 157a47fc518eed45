using System.Text.Json;
using DeepSpeedSharp.Config;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Precision;

/// <summary>
/// The training precision from the config's <c>bf16</c>/<c>fp16</c>/<c>data_types</c> sections: the dtype the model
/// computes in, whether gradients accumulate across micro-steps in fp32 (<c>data_types.grad_accum_dtype: "fp32"</c>,
/// DeepSpeed's BF16 optimizer), whether non-finite gradients skip the step, and the fp16 loss scaler.
/// Master weights live with the optimizer: fp32, or the model's 16-bit dtype with <c>bf16_master_weights_and_grads</c>
/// / <c>fp16_master_weights_and_grads</c> (then the gradient partitions too), whose Adam moments stay fp32 unless
/// <c>bf16_optimizer_states</c> is set.
/// </summary>
public sealed class PrecisionPolicy
{
    private PrecisionPolicy(ScalarType modelDType, bool fp32GradAccumulation, bool checkOverflow, LossScaler? scaler,
        bool lowPrecisionMasters = false, bool lowPrecisionOptimizerStates = false)
    {
        ModelDType = modelDType;
        MasterDType = lowPrecisionMasters ? modelDType : ScalarType.Float32;
        LowPrecisionOptimizerStates = lowPrecisionOptimizerStates;
        Fp32GradAccumulation = fp32GradAccumulation;
        CheckOverflow = checkOverflow;
        Scaler = scaler;
    }

    /// <summary>Float32, BFloat16 or Float16.</summary>
    public ScalarType ModelDType { get; }

    /// <summary>The dtype of the master weights and gradient partitions the optimizer steps: Float32, or the model's
    /// dtype with <c>bf16_master_weights_and_grads</c> / <c>fp16_master_weights_and_grads</c>.</summary>
    public ScalarType MasterDType { get; }

    /// <summary><c>bf16_optimizer_states</c>: the optimizer's moments are kept in <see cref="MasterDType"/>, not fp32.</summary>
    public bool LowPrecisionOptimizerStates { get; }

    /// <summary>True for bf16 or fp16 training.</summary>
    public bool IsReducedPrecision => ModelDType != ScalarType.Float32;

    /// <summary>Gradients of 16-bit models accumulate across micro-steps in fp32 buffers.</summary>
    public bool Fp32GradAccumulation { get; }

    /// <summary>Non-finite gradients skip the optimizer step (always with fp16; <c>bf16.check_grad_overflow</c> with bf16).</summary>
    public bool CheckOverflow { get; }

    /// <summary>The fp16 loss scaler; null unless fp16 is enabled.</summary>
    public LossScaler? Scaler { get; }

    /// <summary>The current loss scale (1 without fp16).</summary>
    public double LossScale => Scaler?.Scale ?? 1.0;

    /// <summary>Reads the policy from the config.</summary>
    public static PrecisionPolicy From(DeepSpeedConfig config)
    {
        if (config.Fp16.Enabled)
            return new PrecisionPolicy(ScalarType.Float16, config.DataTypes.GradAccumDtype == "fp32", true, LossScaler.FromConfig(config.Fp16),
                config.Fp16.Fp16MasterWeightsAndGrads);
        if (config.Bf16.Enabled)
        {
            string accum = config.DataTypes.GradAccumDtype ?? "bf16";
            if (accum == "fp16")
                throw new DeepSpeedConfigException("data_types.grad_accum_dtype \"fp16\" with bf16.enabled: accumulate in \"bf16\" or \"fp32\"");
            return new PrecisionPolicy(ScalarType.BFloat16, accum == "fp32", config.Bf16.CheckGradOverflow, null,
                config.Bf16.Bf16MasterWeightsAndGrads, config.Bf16.Bf16OptimizerStates);
        }
        return new PrecisionPolicy(ScalarType.Float32, false, true, null);
    }

    /// <summary>The checkpoint section for the loss scaler ("loss_scaler"), empty without fp16.</summary>
    public System.Text.Json.Nodes.JsonObject SaveState() => Scaler is null
        ? new()
        : new() { ["loss_scaler"] = System.Text.Json.JsonSerializer.SerializeToNode(Scaler.StateDict()) };

    /// <summary>Restores the loss scaler from a checkpoint section written by <see cref="SaveState"/> (absent: unchanged).</summary>
    public void LoadState(System.Text.Json.Nodes.JsonObject sections)
    {
        if (Scaler is null || sections["loss_scaler"] is not { } node) return;
        var state = node.Deserialize<LossScalerState>() ?? throw new InvalidDataException("the checkpoint's loss_scaler section is empty");
        Scaler.LoadStateDict(state);
    }

    /// <summary>Short name for logs: fp32, bf16 or fp16 (with "+fp32 accumulation").</summary>
    public override string ToString() =>
        (ModelDType switch { ScalarType.BFloat16 => "bf16", ScalarType.Float16 => "fp16", _ => "fp32" })
        + (Fp32GradAccumulation ? " (fp32 gradient accumulation)" : "")
        + (MasterDType != ScalarType.Float32 ? $" ({(LowPrecisionOptimizerStates ? "16-bit master weights, gradients and optimizer states" : "16-bit master weights and gradients")})" : "");
}
