using System.Runtime.CompilerServices;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Shm;

internal sealed unsafe partial class ShmProcessGroup
{
    /// <summary>
    /// Banks rotate over <see cref="Banks"/> across calls, one bank per synchronised step. A bank written before sync s
    /// is read by the peers before they arrive at sync s + 2 (the all-reduce copies a chunk's result out one step late),
    /// so with three banks a rank reusing it has passed sync s + 2, which every reader reached after its last read.
    /// </summary>
    private int NextBank() { int b = _bank; _bank = (_bank + 1) % Banks; return b; }

    private long ChunkElements(int elementSize, long bytes) => Math.Max(1, bytes / 64 * 64 / elementSize);

    internal override void BarrierCore(in OpContext ctx) => Begin(ctx);

    internal override void AllReduceCore(in OpContext ctx, HostBuffer buf, ReduceOp op) => ReduceChunks(ctx, buf, op, -1);

    internal override void ReduceCore(in OpContext ctx, HostBuffer buf, int dst, ReduceOp op) => ReduceChunks(ctx, buf, op, dst);

    /// <summary>
    /// All-reduce (dst = -1) or reduce to dst, one slot-sized chunk per step and one synchronisation per step: each
    /// rank copies the other ranks' sub-ranges of chunk c into its slot (its own sub-range is read straight from its
    /// buffer), synchronises, copies the other ranks' reduced sub-ranges of chunk c - 1 out of their slots, then reduces
    /// its sub-range of chunk c over all ranks in rank order, storing the result both into its slot (for the peers,
    /// who copy it after the next synchronisation) and into its own buffer. The first synchronisation also checks the
    /// ranks' descriptors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReduceChunks(in OpContext ctx, HostBuffer buf, ReduceOp op, int dst)
    {
        if (buf.Count == 0) { Begin(ctx); return; }
        int es = buf.ElementSize;
        long chunk = ChunkElements(es, _slotBytes);
        bool wantResult = dst < 0 || dst == _me, peersWantMine = dst < 0 || dst != _me;
        Publish(ctx);
        int prevBank = -1;
        long prevOff = 0, prevN = 0;
        for (long off = 0; off < buf.Count; off += chunk)
        {
            long n = Math.Min(chunk, buf.Count - off);
            int b = NextBank();
            Part(n, _me, es, out long lo, out long len);
            Copy(buf.At(off), Slot(b, _me), lo * es);
            Copy(buf.At(off + lo + len), Slot(b, _me) + (lo + len) * es, (n - lo - len) * es);
            Sync(ctx);
            if (prevBank < 0)
            {
                try { CheckDescriptors(ctx); }
                catch (DistributedException) { _bank = b; throw; } // the peers that ran another operation took no bank
            }
            else if (wantResult) CopyOutPeers(prevBank, buf, prevOff, prevN, es);
            for (int k = 0; k < _n; k++) _sources[k] = k == _me ? (nint)buf.At(off + lo) : (nint)(Slot(b, k) + lo * es);
            byte* toSlot = Slot(b, _me) + lo * es, toBuf = buf.At(off + lo);
            if (wantResult && peersWantMine) Reducer.Reduce(buf.DType, op, _sources, _n, toSlot, len, toBuf);
            else Reducer.Reduce(buf.DType, op, _sources, _n, wantResult ? toBuf : toSlot, len);
            (prevBank, prevOff, prevN) = (b, off, n);
        }
        Sync(ctx);
        if (wantResult) CopyOutPeers(prevBank, buf, prevOff, prevN, es);
    }

    /// <summary>Copies every other rank's reduced sub-range of the chunk at <paramref name="off"/> from its slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CopyOutPeers(int bank, HostBuffer buf, long off, long n, int es)
    {
        for (int k = 0; k < _n; k++)
        {
            if (k == _me) continue;
            Part(n, k, es, out long klo, out long klen);
            Copy(Slot(bank, k) + klo * es, buf.At(off + klo), klen * es);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op)
    {
        Begin(ctx);
        int es = input.ElementSize;
        long cs = ChunkElements(es, _slotBytes / _n);
        long max = counts.Max();
        var offsets = Offsets(counts);
        for (long off = 0; off < max; off += cs)
        {
            int b = NextBank();
            for (int j = 0; j < _n; j++)
                Copy(input.At(offsets[j] + off), Slot(b, _me) + j * cs * es, Math.Clamp(counts[j] - off, 0, cs) * es);
            Sync(ctx);
            long len = Math.Clamp(counts[_me] - off, 0, cs);
            for (int k = 0; k < _n; k++) _sources[k] = (nint)(Slot(b, k) + _me * cs * es);
            Reducer.Reduce(input.DType, op, _sources, _n, output.At(off), len);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts)
    {
        Begin(ctx);
        int es = input.ElementSize;
        long cs = ChunkElements(es, _slotBytes);
        long max = counts.Max();
        var offsets = Offsets(counts);
        Copy(input.Ptr, output.At(offsets[_me]), input.Bytes);
        for (long off = 0; off < max; off += cs)
        {
            int b = NextBank();
            Copy(input.At(off), Slot(b, _me), Math.Clamp(counts[_me] - off, 0, cs) * es);
            Sync(ctx);
            for (int k = 0; k < _n; k++)
                if (k != _me) Copy(Slot(b, k), output.At(offsets[k] + off), Math.Clamp(counts[k] - off, 0, cs) * es);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override void BroadcastCore(in OpContext ctx, HostBuffer buf, int src)
    {
        Begin(ctx);
        int es = buf.ElementSize;
        long cs = ChunkElements(es, _slotBytes);
        for (long off = 0; off < buf.Count; off += cs)
        {
            long n = Math.Min(cs, buf.Count - off);
            int b = NextBank();
            if (_me == src) Copy(buf.At(off), Slot(b, src), n * es);
            Sync(ctx);
            if (_me != src) Copy(Slot(b, src), buf.At(off), n * es);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input)
    {
        Begin(ctx);
        int es = input.ElementSize;
        long block = input.Count / _n;
        long cs = ChunkElements(es, _slotBytes / _n);
        for (long off = 0; off < block; off += cs)
        {
            long len = Math.Min(cs, block - off);
            int b = NextBank();
            for (int j = 0; j < _n; j++) Copy(input.At(j * block + off), Slot(b, _me) + j * cs * es, len * es);
            Sync(ctx);
            for (int j = 0; j < _n; j++) Copy(Slot(b, j) + _me * cs * es, output.At(j * block + off), len * es);
        }
    }

    private static long[] Offsets(long[] counts)
    {
        var o = new long[counts.Length];
        for (int i = 1; i < counts.Length; i++) o[i] = o[i - 1] + counts[i - 1];
        return o;
    }
}
