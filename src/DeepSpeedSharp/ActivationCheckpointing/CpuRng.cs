using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>Reads and writes the state of the process's default CPU generator (torch.get_rng_state / set_rng_state).</summary>
internal static class CpuRng
{
    /// <summary>A copy of the default CPU generator's state (a byte tensor outside every dispose scope).</summary>
    public static Tensor GetState() => torch.Generator.Default.get_state().DetachFromDisposeScope();

    /// <summary>Makes the default CPU generator continue from <paramref name="state"/>.</summary>
    public static void SetState(Tensor state) => torch.Generator.Default.set_state(state);
}
