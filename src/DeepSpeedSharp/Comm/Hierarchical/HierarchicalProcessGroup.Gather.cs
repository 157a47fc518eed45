using System.Runtime.InteropServices;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Hierarchical;

/// <summary>
/// Host-aware all-gather and reduce-scatter. On the flat exchange every rank's chunk travels to every rank of another
/// host, so with L ranks per host each chunk crosses each link L times; here it crosses once:
/// <list type="bullet">
/// <item>all-gather: an all-gather among the ranks with this rank's local index on every host (tcp: the chunks of that
/// local index), then an all-gather of those bundles inside the host (shm), then each chunk is put in its place;</item>
/// <item>reduce-scatter: the input reordered by (local index, host), a reduce-scatter inside the host (shm: the host's
/// sum of the chunks meant for this local index on every host), then a reduce-scatter among the ranks with this local
/// index (tcp). 16-bit inputs are summed in a float32 copy and rounded once; Avg is a Sum divided once at the end.</item>
/// </list>
/// Sums are associated per host, as the all-reduce's are.
/// </summary>
internal sealed unsafe partial class HierarchicalProcessGroup
{
    private byte* _scratch;
    private long _scratchBytes;

    internal override void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts)
    {
        if (_inter == null) { _flat.AllGatherCore(Flat(ctx), output, input, counts); return; }
        int hosts = _hostRanks.Length, es = input.ElementSize;
        var offsets = Offsets(counts);
        var (localCounts, crossCounts) = Split(counts);
        long bundle = crossCounts.Sum(), total = localCounts.Sum();
        byte* scratch = Scratch((bundle + total) * es);
        var mine = new HostBuffer(scratch, bundle, input.DType);
        var all = new HostBuffer(scratch + bundle * es, total, input.DType);
        string stage = "inter-host all-gather";
        try
        {
            _inter.AllGatherCore(Sub(ctx, ref _interSeq, OpCode.AllGather, (int)input.DType, bundle, 1), mine, input, crossCounts);
            stage = "intra-host all-gather";
            _intra.AllGatherCore(Sub(ctx, ref _intraSeq, OpCode.AllGather, (int)input.DType, total, 1), all, mine, localCounts);
        }
        catch (DistributedException e) { throw Wrap(ctx, stage, e); }
        long at = 0;
        for (int k = 0; k < _localSize; k++)
            for (int h = 0; h < hosts; h++)
            {
                int g = _hostRanks[h][k];
                Buffer.MemoryCopy(all.At(at), output.At(offsets[g]), counts[g] * es, counts[g] * es);
                at += counts[g];
            }
    }

    internal override void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op)
    {
        if (_inter == null) { _flat.ReduceScatterCore(Flat(ctx), output, input, counts, op); return; }
        int hosts = _hostRanks.Length, es = input.ElementSize;
        bool half = ElementConvert.IsHalf(input.DType);
        var work = half ? TorchSharp.torch.ScalarType.Float32 : input.DType;
        int ws = half ? 4 : es;
        var offsets = Offsets(counts);
        var rop = op == ReduceOp.Avg ? ReduceOp.Sum : op;
        var (localCounts, crossCounts) = Split(counts);
        long total = localCounts.Sum(), bundle = localCounts[_local], result = half ? output.Count : 0;
        byte* scratch = Scratch((total + bundle + result) * ws);
        var ordered = new HostBuffer(scratch, total, work);
        var mine = new HostBuffer(scratch + total * ws, bundle, work);
        var sum = half ? new HostBuffer(scratch + (total + bundle) * ws, result, work) : output;
        long at = 0;
        for (int k = 0; k < _localSize; k++)
            for (int h = 0; h < hosts; h++)
            {
                int g = _hostRanks[h][k];
                if (half) ElementConvert.ToFloat(input.DType, input.At(offsets[g]), (float*)ordered.At(at), counts[g]);
                else Buffer.MemoryCopy(input.At(offsets[g]), ordered.At(at), counts[g] * es, counts[g] * es);
                at += counts[g];
            }
        string stage = "intra-host reduce-scatter";
        try
        {
            _intra.ReduceScatterCore(Sub(ctx, ref _intraSeq, OpCode.ReduceScatter, (int)work, total, (long)rop), mine, ordered, localCounts, rop);
            stage = "inter-host reduce-scatter";
            _inter.ReduceScatterCore(Sub(ctx, ref _interSeq, OpCode.ReduceScatter, (int)work, bundle, (long)rop), sum, mine, crossCounts, rop);
        }
        catch (DistributedException e) { throw Wrap(ctx, stage, e); }
        if (half) ElementConvert.FromFloat(output.DType, (float*)sum.Ptr, output.Ptr, output.Count, op == ReduceOp.Avg ? Size : 1);
        else if (op == ReduceOp.Avg) ElementConvert.Divide(output.DType, output.Ptr, output.Count, Size);
    }

    /// <summary>
    /// Element counts per local index (the bundle of that index's chunks on every host: the in-host stage) and per
    /// host for this rank's local index (the cross-host stage).
    /// </summary>
    private (long[] Local, long[] Cross) Split(long[] counts)
    {
        int hosts = _hostRanks.Length;
        var local = new long[_localSize];
        for (int k = 0; k < _localSize; k++)
            for (int h = 0; h < hosts; h++) local[k] += counts[_hostRanks[h][k]];
        var cross = new long[hosts];
        for (int h = 0; h < hosts; h++) cross[h] = counts[_hostRanks[h][_local]];
        return (local, cross);
    }

    private static long[] Offsets(long[] counts)
    {
        var offsets = new long[counts.Length];
        for (int i = 1; i < counts.Length; i++) offsets[i] = offsets[i - 1] + counts[i - 1];
        return offsets;
    }

    /// <summary>This group's working memory (grown as needed; one operation at a time uses it).</summary>
    private byte* Scratch(long bytes)
    {
        if (bytes > _scratchBytes)
        {
            NativeMemory.AlignedFree(_scratch);
            _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
            _scratchBytes = bytes;
        }
        return _scratch;
    }

    private void FreeScratch()
    {
        NativeMemory.AlignedFree(_scratch);
        _scratch = null;
        _scratchBytes = 0;
    }
}
