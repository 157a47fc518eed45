using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>The device synchronisation of <c>synchronize_checkpoint_boundary</c> (a no-op wait on CPU, counted in the
/// checkpointer's <see cref="SavedActivationStats.BoundarySyncs"/>).</summary>
internal static class DeviceSync
{
    /// <summary>True when both name the same device (type and index).</summary>
    public static bool Same(Device a, Device b) => a.type == b.type && a.index == b.index;

    /// <summary>Waits for the work queued on <paramref name="device"/> (CUDA) to finish; CPU work is already synchronous.</summary>
    public static void Synchronize(Device? device, SavedActivationStats stats)
    {
        stats.Synchronized();
        if (device is { type: DeviceType.CUDA }) torch.cuda.synchronize(device);
    }
}
