using DeepSpeedSharp.Comm;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>Access to full parameter values for <see cref="GatheredParameters"/> and 16-bit model saving.</summary>
internal sealed partial class Zero3Strategy
{
    private static readonly Dictionary<IntPtr, (WeakReference<Zero3Strategy> Strategy, Zero3Parameter Param)> Owners = new();

    internal ProcessGroup Group => group;

    /// <summary>Registers every partitioned parameter so that <see cref="Find"/> can map a Parameter back to it.</summary>
    private void RegisterOwnership()
    {
        lock (Owners)
            foreach (var zp in parameters) Owners[zp.Param.Handle] = (new WeakReference<Zero3Strategy>(this), zp);
    }

    private void UnregisterOwnership()
    {
        lock (Owners)
            foreach (var zp in parameters) Owners.Remove(zp.Param.Handle);
    }

    /// <summary>The live ZeRO-3 strategy and partition record of a parameter, or null when it is not partitioned.</summary>
    internal static (Zero3Strategy Strategy, Zero3Parameter Param)? Find(Parameter p)
    {
        lock (Owners)
            return Owners.TryGetValue(p.Handle, out var entry) && entry.Strategy.TryGetTarget(out var s) ? (s, entry.Param) : null;
    }

    internal void Gather(Zero3Parameter p) => p.Gather(master);

    internal void Release(Zero3Parameter p) => p.Release();

    /// <summary>Writes this rank's slice of the parameter's current full value into the fp32 master partition.</summary>
    internal void StoreOwnPartition(Zero3Parameter p) => p.CopyOwnPartitionTo(master);

    /// <summary>Visits every trainable parameter's full value in module order, gathering one at a time.</summary>
    internal void ForEachFull(Action<string, Tensor> visit)
    {
        foreach (var zp in parameters)
        {
            bool wasGathered = zp.IsGathered;
            zp.Gather(master);
            visit(zp.Name, zp.Param);
            if (!wasGathered) zp.Release();
        }
    }
}
