using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// ZeRO++ hpZ's secondary partition of one parameter: besides its primary partition over the whole data-parallel
/// group, each rank keeps 1/h of the parameter's (model-dtype) value, where h = <c>zero_hpz_partition_size</c> ranks
/// share a host. The first gather after the weights change goes over the primary partitions and fills this slice;
/// until the next optimizer step, gathers run over the host's ranks only. Derived state: never saved.
/// </summary>
internal sealed class HpzSecondaryPartition : IDisposable
{
    private readonly ProcessGroup group;
    private readonly Tensor slice;
    private readonly long numel;

    public HpzSecondaryPartition(long numel, ScalarType dtype, Device device, ProcessGroup group)
    {
        this.numel = numel;
        this.group = group;
        PartitionSize = (numel + group.Size - 1) / group.Size;
        slice = zeros(PartitionSize, dtype, device).DetachFromDisposeScope();
    }

    /// <summary>Elements this rank keeps (⌈numel / h⌉).</summary>
    public long PartitionSize { get; }

    /// <summary>Bytes this rank keeps.</summary>
    public long Bytes => PartitionSize * slice.element_size();

    /// <summary>True when the slice holds the current weights (set by <see cref="Store"/>, cleared by <see cref="Invalidate"/>).</summary>
    public bool IsValid { get; private set; }

    /// <summary>Keeps this rank's slice of the freshly gathered full value.</summary>
    public void Store(Tensor full)
    {
        using var noGrad = no_grad();
        using var flat = full.reshape(-1);
        long start = group.Rank * PartitionSize, real = Math.Clamp(numel - start, 0, PartitionSize);
        if (real > 0)
        {
            using var src = flat.narrow(0, start, real);
            using var dst = slice.narrow(0, 0, real);
            dst.copy_(src);
        }
        IsValid = true;
    }

    /// <summary>The weights changed (optimizer step, checkpoint load, a write through GatheredParameters).</summary>
    public void Invalidate() => IsValid = false;

    /// <summary>Starts the intra-host all-gather of the full value from the secondary slices.</summary>
    public PendingGather BeginGather()
    {
        var full = empty(PartitionSize * group.Size, slice.dtype, slice.device).DetachFromDisposeScope();
        Work? work = null;
        if (group.Size == 1) full.copy_(slice);
        else work = group.AllGatherAsync(full, slice);
        return new PendingGather(full, [work], null, fromPrimary: false);
    }

    public void Dispose() => slice.Dispose();
}
