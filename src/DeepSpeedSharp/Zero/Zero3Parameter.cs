using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Zero.ZeroPlusPlus;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// One parameter under ZeRO-3: its flat values split into equal partitions (padded), rank r holding
/// [r·P, (r+1)·P) as a slice of the strategy's fp32 master buffer. The module's <see cref="Parameter"/> keeps its
/// handle (so optimizers and user code keep their references) but holds either the full gathered tensor or an
/// empty one. Persistent (small) parameters stay gathered all the time. Under ZeRO++ the gathers of training
/// (forward and backward) may send int8 weights (qwZ) and, with hpZ, run over the host's secondary partitions once the
/// first gather after a weight change has filled them; other gathers (saving, GatheredParameters) are exact.
/// </summary>
internal sealed class Zero3Parameter
{
    private readonly ProcessGroup group;
    private Tensor? gathered;
    private PendingGather? pending;
    private bool pendingForTraining;
    private readonly bool quantizeWeights;

    private readonly ZeroInit.PrePartitioned? prePartitioned;

    public Zero3Parameter(string name, Parameter param, ProcessGroup group, long masterOffset, bool persistent, ZeroInit.PrePartitioned? prePartitioned,
        ZeroPlusPlusGroups? zeroPlusPlus = null)
    {
        Name = name;
        Param = param;
        this.group = group;
        this.prePartitioned = prePartitioned;
        if (prePartitioned is { } pre && (pre.WorldSize != group.Size || pre.Rank != group.Rank))
            throw new InvalidOperationException($"parameter '{name}' was partitioned by ZeroInit for rank {pre.Rank} of {pre.WorldSize}, " +
                                                $"but the engine's data-parallel group has this process as rank {group.Rank} of {group.Size}");
        Shape = prePartitioned?.Shape ?? param.shape;
        Numel = prePartitioned?.Numel ?? param.numel();
        PartitionSize = (Numel + group.Size - 1) / group.Size;
        MasterOffset = masterOffset;
        Persistent = persistent;
        DType = param.dtype; // the engine's model dtype (the parameter may already be empty)
        Device = param.device;
        // Persistent parameters stay gathered: they need neither a secondary partition nor quantized gathers.
        if (!persistent && zeroPlusPlus?.Secondary is { } secondary) Secondary = new HpzSecondaryPartition(Numel, DType, Device, secondary);
        // qwZ leaves one-dimensional parameters (norm weights, biases) exact: their values sit in a narrow band away
        // from zero (gains near 1), where a symmetric int8 step is as large as what training changes, and they are a
        // negligible share of the bytes (docs/zero.md; docs/benchmarks.md, ZeRO++ quantization drift).
        quantizeWeights = !persistent && zeroPlusPlus?.QuantizeWeights == true && param.shape.Length > 1;
    }

    /// <summary>hpZ's secondary partition of this parameter, or null.</summary>
    public HpzSecondaryPartition? Secondary { get; }

    /// <summary>True when the parameter came already partitioned from <see cref="ZeroInit"/>.</summary>
    public bool IsPrePartitioned => prePartitioned is not null;

    public string Name { get; }
    public Parameter Param { get; }
    public long[] Shape { get; }
    public long Numel { get; }
    public long PartitionSize { get; }
    public long MasterOffset { get; }
    public bool Persistent { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    /// <summary>True while the full value is in <see cref="Param"/>.</summary>
    public bool IsGathered => gathered is not null;

    /// <summary>Bytes of the full value (what gathering costs in memory).</summary>
    public long FullBytes => Numel * DType.ElementSize();

    /// <summary>This rank's slice of the flat value, as [offset, count) within the parameter (the tail may be padding).</summary>
    public (long Start, long Count) OwnRange => (group.Rank * PartitionSize, PartitionSize);

    /// <summary>Copies this rank's partition of the current full value into <paramref name="master"/>.</summary>
    public void CopyOwnPartitionTo(Tensor master)
    {
        Secondary?.Invalidate();
        using var noGrad = no_grad();
        if (prePartitioned is { } pre && !pre.Slice.IsInvalid)
        {
            using var own = master.narrow(0, MasterOffset, PartitionSize);
            own.copy_(pre.Slice);
            pre.Slice.Dispose();
            return;
        }
        using var detached = Param.detach();
        using var flat = detached.reshape(-1);
        var (start, count) = OwnRange;
        long real = Math.Max(0, Math.Min(count, Numel - start));
        using var target = master.narrow(0, MasterOffset, PartitionSize);
        target.zero_();
        if (real > 0)
        {
            using var src = flat.narrow(0, start, real);
            using var dst = target.narrow(0, 0, real);
            dst.copy_(src);
        }
    }

    /// <summary>True while an asynchronous gather is in flight.</summary>
    public bool IsGathering => pending is not null;

    /// <summary>All-gathers the exact full value from every rank's partition in <paramref name="master"/> into the parameter.</summary>
    public void Gather(Tensor master)
    {
        BeginGather(master);
        CompleteGather();
    }

    /// <summary>
    /// Starts gathering (asynchronously when there are several ranks); <see cref="CompleteGather"/> finishes it.
    /// <paramref name="training"/>: a gather for forward or backward, which ZeRO++ may serve from the secondary
    /// partitions (hpZ) or send quantized (qwZ).
    /// </summary>
    public void BeginGather(Tensor master, bool training = false)
    {
        if (gathered is not null || pending is not null) return;
        using var noGrad = no_grad();
        pendingForTraining = training;
        if (training && Secondary is { IsValid: true } secondary)
            pending = secondary.BeginGather();
        else
        {
            var mine = master.narrow(0, MasterOffset, PartitionSize).DetachFromDisposeScope();
            if (training && quantizeWeights)
            {
                pending = QuantizedWeightGather.Begin(mine, PartitionSize, group, DType, Device);
                mine.Dispose();
            }
            else pending = PlainGather(mine);
        }
        if (pending.IsDone) Install();
    }

    /// <summary>The primary all-gather in the model's dtype (bf16/fp16 models, or partitions offloaded to host memory, are cast first).</summary>
    private PendingGather PlainGather(Tensor mine)
    {
        var full = empty(PartitionSize * group.Size, DType, Device).DetachFromDisposeScope();
        if (mine.dtype != DType || mine.device.ToString() != Device.ToString())
        {
            var cast = mine.to(DType, Device).DetachFromDisposeScope();
            mine.Dispose();
            mine = cast;
        }
        Work? work = null;
        if (group.Size == 1) full.copy_(mine);
        else work = group.AllGatherAsync(full, mine);
        return new PendingGather(full, [work], null, fromPrimary: true, mine);
    }

    /// <summary>Waits for an in-flight gather and installs the full value in the parameter.</summary>
    public void CompleteGather()
    {
        if (pending is null) return;
        Install();
    }

    private void Install()
    {
        using var noGrad = no_grad();
        var done = pending!;
        pending = null;
        done.Wait();
        gathered = done.Full;
        // Every intermediate handle is disposed here: an undisposed one would keep the gathered storage alive after
        // Release until its scope ends or a finalizer runs (a whole forward or backward of full-size weights).
        using var used = gathered.narrow(0, 0, Numel);
        using var view = used.view(Shape);
        if (pendingForTraining && done.FromPrimary) Secondary?.Store(view);
        Param.set_(view);
    }

    /// <summary>Frees the full value (persistent parameters keep it).</summary>
    public void Release(bool force = false)
    {
        CompleteGather();
        if (gathered is null || (Persistent && !force)) return;
        using var noGrad = no_grad();
        using var none = empty(0, DType, Device);
        Param.set_(none);
        gathered.Dispose();
        gathered = null;
        Native.AllocatorTuning.Freed(FullBytes);
    }

    /// <summary>Frees the parameter's original full tensor after its partition has been copied out.</summary>
    public void DropOriginal()
    {
        using var noGrad = no_grad();
        using var none = empty(0, DType, Device);
        Param.set_(none);
    }

    /// <summary>The partitions changed (optimizer step, checkpoint load): hpZ's secondary partition must be refilled.</summary>
    public void WeightsChanged() => Secondary?.Invalidate();

    /// <summary>Re-gathers a persistent parameter after the optimizer changed the partitions.</summary>
    public void Refresh(Tensor master)
    {
        Release(force: true);
        Gather(master);
    }
}
