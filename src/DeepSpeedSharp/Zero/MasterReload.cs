using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// <c>zero_optimization.load_from_fp32_weights: false</c>: after a checkpoint is loaded, the master weights are taken
/// from the 16-bit model weights instead of the saved fp32 masters (DeepSpeed's <c>_restore_from_bit16_weights</c>).
/// The saved 16-bit weights are the masters rounded to the model dtype, so rounding the loaded masters gives exactly them.
/// </summary>
internal static class MasterReload
{
    /// <summary>Rounds <paramref name="master"/> to <paramref name="modelDType"/> and back, in place, when the flag asks for
    /// it and the model is 16-bit with wider masters; otherwise leaves it alone.</summary>
    public static void FromModelWeightsIfAsked(Tensor master, ScalarType modelDType, bool loadFromFp32Weights)
    {
        if (loadFromFp32Weights || modelDType == master.dtype || modelDType is not (ScalarType.BFloat16 or ScalarType.Float16)) return;
        using var noGrad = no_grad();
        using var rounded = master.to(modelDType);
        master.copy_(rounded);
    }
}
