using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Reduce-scatters the gradients of all of a unit's parameters in one collective instead of one per parameter: the
/// parameters' padded flat gradients are packed rank-major (rank r's block holds partition r of every parameter, in
/// order), so one equal-chunk reduce-scatter leaves each rank its partition of every parameter. Every element is summed
/// over the same ranks in the same order as the per-parameter path, so the result is bit-identical.
/// </summary>
internal sealed class Zero3UnitReducer : IDisposable
{
    private readonly ProcessGroup group;
    private readonly Tensor packed;
    private readonly Tensor received;

    public Zero3UnitReducer(ProcessGroup group, IEnumerable<Zero3Unit> units, Device device)
    {
        this.group = group;
        long largest = Math.Max(1, units.Select(u => u.Parameters.Sum(p => p.PartitionSize)).DefaultIfEmpty(1).Max());
        packed = empty(largest * group.Size, ScalarType.Float32, device).DetachFromDisposeScope();
        received = empty(largest, ScalarType.Float32, device).DetachFromDisposeScope();
    }

    /// <summary>Adds this rank's share of the unit's (scaled) gradients into <paramref name="gradPartition"/> and drops them.</summary>
    public void Reduce(IReadOnlyList<Zero3Parameter> parameters, Tensor gradPartition, double before, double after)
    {
        var ps = parameters.Where(p => p.Param.grad is not null).ToList();
        if (ps.Count == 0) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long stride = ps.Sum(p => p.PartitionSize);
        var input = packed.narrow(0, 0, stride * group.Size);
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
        var output = received.narrow(0, 0, stride);
        if (group.Size == 1) output.copy_(input);
        else group.ReduceScatter(output, input, ReduceOp.Sum);
        if (after != 1.0) output.mul_(after);
        long at = 0;
        foreach (var p in ps)
        {
            var target = gradPartition.narrow(0, p.MasterOffset, p.PartitionSize);
            var mine = output.narrow(0, at, p.PartitionSize);
            target.add_(target.device.ToString() == mine.device.ToString() ? mine : mine.to(target.device));
            at += p.PartitionSize;
            p.Param.grad = null;
        }
    }

    public void Dispose()
    {
        packed.Dispose();
        received.Dispose();
    }
}
