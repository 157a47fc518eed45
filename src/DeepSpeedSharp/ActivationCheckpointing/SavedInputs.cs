using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>
/// What one checkpoint keeps of its inputs between forward and backward: a reference to each input, or, with
/// <c>partition_activations</c>, this rank's 1/mp share of each floating-point input (padded to equal shares),
/// optionally in host memory (<c>cpu_checkpointing</c>) or in a slot of the contiguous buffer. <see cref="Restore"/>
/// rebuilds the full inputs (all-gathering the shares over the model-parallel group).
/// </summary>
internal sealed class SavedInputs : IDisposable
{
    private readonly Entry[] _entries;
    private readonly TensorParallelContext _mp;
    private bool _disposed;

    private SavedInputs(Entry[] entries, TensorParallelContext mp, long bytes)
    {
        _entries = entries;
        _mp = mp;
        Bytes = bytes;
    }

    /// <summary>Bytes of the tensors kept (numel × element size).</summary>
    public long Bytes { get; }

    /// <summary>True after <see cref="Dispose"/>.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Number of inputs saved as partitions.</summary>
    public int PartitionedCount => _entries.Count(e => e.Partition is not null);

    /// <summary>The kept tensor of input <paramref name="index"/> (the reference or the partition), for inspection.</summary>
    public Tensor Kept(int index) => _entries[index].Reference ?? _entries[index].Partition!;

    public static SavedInputs Save(IReadOnlyList<Tensor> inputs, CheckpointingSettings settings, TensorParallelContext mp, ContiguousCheckpointBuffers buffers)
    {
        var entries = new Entry[inputs.Count];
        long bytes = 0;
        int partitioned = 0;
        try
        {
            for (int i = 0; i < inputs.Count; i++)
            {
                var input = inputs[i];
                bool partition = settings.PartitionActivations && input.is_floating_point() && input.numel() >= mp.Size;
                entries[i] = partition
                    ? SavePartition(input, settings, mp, buffers, partitioned++)
                    : new Entry { Reference = input.detach().DetachFromDisposeScope() };
                var kept = entries[i].Reference ?? entries[i].Partition!;
                bytes += kept.numel() * kept.element_size();
            }
        }
        catch
        {
            foreach (var e in entries) e?.Dispose();
            throw;
        }
        return new SavedInputs(entries, mp, bytes);
    }

    private static Entry SavePartition(Tensor input, CheckpointingSettings s, TensorParallelContext mp, ContiguousCheckpointBuffers buffers, int index)
    {
        long numel = input.numel();
        long share = (numel + mp.Size - 1) / mp.Size;
        long start = Math.Min(numel, share * mp.Rank), count = Math.Min(share, numel - start);
        var target = s.CpuCheckpointing ? CPU : input.device;
        var entry = new Entry { Shape = input.shape, DType = input.dtype, Device = input.device, Numel = numel, Share = share };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = input.detach().reshape(-1);
        if (mp.Size == 1 && !s.CpuCheckpointing && !s.ContiguousMemoryOptimization)
        {
            entry.Partition = flat.DetachFromDisposeScope(); // the whole tensor is this rank's share: keep a reference
            return entry;
        }
        var part = zeros(new[] { share }, input.dtype, target);
        if (count > 0) part.narrow(0, 0, count).copy_(flat.narrow(0, start, count));
        if (s.ContiguousMemoryOptimization)
        {
            entry.Slot = buffers.Store(index, part, s.NumberCheckpoints!.Value, target);
            entry.Partition = entry.Slot.View;
        }
        else
        {
            entry.Partition = part.DetachFromDisposeScope();
        }
        return entry;
    }

    /// <summary>The full inputs, in order (new tensors in the current dispose scope, detached from any graph).</summary>
    public Tensor[] Restore()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new Tensor[_entries.Length];
        for (int i = 0; i < _entries.Length; i++)
        {
            var e = _entries[i];
            result[i] = e.Reference is not null ? e.Reference.detach() : Gather(e);
        }
        return result;
    }

    private Tensor Gather(Entry e)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor flat;
        if (_mp.Size == 1) flat = e.Partition!;
        else
        {
            flat = empty(new[] { e.Share * _mp.Size }, e.DType, e.Partition!.device);
            _mp.Group!.AllGather(flat, e.Partition!);
        }
        var full = flat.narrow(0, 0, e.Numel).view(e.Shape);
        if (!DeviceSync.Same(full.device, e.Device)) full = full.to(e.Device);
        return full.MoveToOuterDisposeScope();
    }

    /// <summary>Releases the kept tensors (and contiguous slots).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var e in _entries) e.Dispose();
    }

    /// <summary>Returns the contiguous slots to their buffers without touching tensors (finaliser path).</summary>
    public void ReleaseSlotsWithoutDisposing()
    {
        foreach (var e in _entries) e.Slot?.ReleaseWithoutDisposing();
    }

    private sealed class Entry : IDisposable
    {
        public Tensor? Reference;
        public Tensor? Partition;
        public ContiguousCheckpointBuffers.Slot? Slot;
        public long[] Shape = [];
        public ScalarType DType;
        public Device Device = CPU;
        public long Numel, Share;

        public void Dispose()
        {
            Reference?.Dispose();
            if (Slot != null) Slot.Dispose();
            else Partition?.Dispose();
        }
    }
}
