using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Zero.ZeroPlusPlus;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Reduce-scatters the gradients of all of a unit's parameters in one collective instead of one per parameter: the
/// parameters' padded flat gradients are packed rank-major (rank r's block holds partition r of every parameter, in
/// order), so one equal-chunk reduce-scatter leaves each rank its partition of every parameter. Every element is summed
/// over the same ranks in the same order as the per-parameter path, so the result is bit-identical.
/// The collective is asynchronous: backward goes on while it runs, with two packing buffers in rotation; results are
/// added into the partition gradient in launch order (when a buffer is needed again, or at <see cref="Flush"/>).
/// With ZeRO++ qgZ the reduce-scatter is <see cref="QuantizedGradientReduceScatter"/>'s two int8 hops, run synchronously.
/// </summary>
internal sealed class Zero3UnitReducer : IDisposable
{
    private const int Slots = 2;
    private readonly ProcessGroup group;
    private readonly Tensor[] packed = new Tensor[Slots];
    private readonly Tensor[] received = new Tensor[Slots];
    private readonly Queue<Pending> pending = new();
    private int nextSlot;
    private readonly QuantizedGradientReduceScatter? quantized;

    private sealed record Pending(int Slot, Work? Work, List<Zero3Parameter> Parameters, Tensor Input, Tensor Output, Tensor GradPartition, double After);

    /// <param name="group">The data-parallel group.</param>
    /// <param name="batches">Every set of parameters that will be reduced together (each unit's, and single parameters).</param>
    /// <param name="device">Where the packing buffers live.</param>
    /// <param name="quantized">ZeRO++ qgZ's quantized reduce-scatter, or null for the exact one.</param>
    public Zero3UnitReducer(ProcessGroup group, IEnumerable<IReadOnlyList<Zero3Parameter>> batches, Device device, QuantizedGradientReduceScatter? quantized = null)
    {
        this.group = group;
        this.quantized = quantized;
        long largest = Math.Max(1, batches.Select(b => b.Sum(p => p.PartitionSize)).DefaultIfEmpty(1).Max());
        for (int k = 0; k < Slots; k++)
        {
            packed[k] = empty(largest * group.Size, ScalarType.Float32, device).DetachFromDisposeScope();
            received[k] = empty(largest, ScalarType.Float32, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Bytes of the packing and receiving buffers (two of each, sized for the largest unit).</summary>
    public long BufferBytes => packed.Concat(received).Sum(t => t.numel() * t.element_size());

    /// <summary>
    /// Packs the unit's gradients, drops them, and starts the reduce-scatter whose result (scaled by
    /// <paramref name="after"/>) is later added into this rank's slices of <paramref name="gradPartition"/>.
    /// </summary>
    public void Reduce(IReadOnlyList<Zero3Parameter> parameters, Tensor gradPartition, double before, double after)
    {
        var ps = parameters.Where(p => Utils.GradientHandles.HasGradient(p.Param)).ToList();
        if (ps.Count == 0) return;
        int slot = nextSlot;
        nextSlot = (nextSlot + 1) % Slots;
        if (pending.Count == Slots) CompleteOldest(); // the slot about to be reused
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long stride = ps.Sum(p => p.PartitionSize);
        // The views outlive this call (the collective runs asynchronously): kept out of the scope, disposed on completion.
        var input = packed[slot].narrow(0, 0, stride * group.Size).DetachFromDisposeScope();
        for (int r = 0; r < group.Size; r++)
        {
            long offset = r * stride;
            foreach (var p in ps)
            {
                var flat = p.Param.grad!.reshape(-1);
                long start = r * p.PartitionSize, real = Math.Clamp(p.Numel - start, 0, p.PartitionSize);
                var block = input.narrow(0, offset, p.PartitionSize);
                if (real > 0) block.narrow(0, 0, real).copy_(flat.narrow(0, start, real));
                if (real < p.PartitionSize) block.narrow(0, real, p.PartitionSize - real).zero_();
                offset += p.PartitionSize;
            }
        }
        if (before != 1.0) input.mul_(before);
        foreach (var p in ps) p.Param.grad = null; // packed: the full gradients can go now
        Native.AllocatorTuning.Freed(ps.Sum(p => p.FullBytes));
        var output = received[slot].narrow(0, 0, stride).DetachFromDisposeScope();
        Work? work = null;
        if (group.Size == 1) output.copy_(input);
        else if (quantized is not null) quantized.Run(output, input, stride);
        else work = group.ReduceScatterAsync(output, input, ReduceOp.Sum);
        pending.Enqueue(new Pending(slot, work, ps, input, output, gradPartition, after));
    }

    /// <summary>Waits for every reduce-scatter in flight and adds the results, in launch order.</summary>
    public void Flush()
    {
        while (pending.Count > 0) CompleteOldest();
        nextSlot = 0;
    }

    private void CompleteOldest()
    {
        var (_, work, ps, input, output, gradPartition, after) = pending.Dequeue();
        work?.Wait();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        input.Dispose();
        if (after != 1.0) output.mul_(after);
        long at = 0;
        foreach (var p in ps)
        {
            var target = gradPartition.narrow(0, p.MasterOffset, p.PartitionSize);
            var mine = output.narrow(0, at, p.PartitionSize);
            target.add_(target.device.ToString() == mine.device.ToString() ? mine : mine.to(target.device));
            at += p.PartitionSize;
        }
        output.Dispose();
    }

    public void Dispose()
    {
        Flush();
        foreach (var t in packed.Concat(received)) t.Dispose();
    }
}
