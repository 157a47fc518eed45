using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Tcp;

internal sealed unsafe partial class TcpProcessGroup
{
    internal override void BarrierCore(in OpContext ctx) => Begin(ctx);

    internal override void AllReduceCore(in OpContext ctx, HostBuffer buf, ReduceOp op)
    {
        Begin(ctx);
        int es = buf.ElementSize;
        long seg = Math.Max(1, SegmentBytes / es);
        for (long off = 0; off < buf.Count; off += seg)
        {
            long n = Math.Min(seg, buf.Count - off);
            Part(n, _me, es, out long myLo, out long myLen);
            byte* scratch = Scratch((long)_n * Math.Max(myLen, 1) * es);
            for (int s = 1; s < _n; s++) // reduce-scatter: peers send me their copy of my part
            {
                Part(n, To(s), es, out long tlo, out long tlen);
                Exchange(To(s), buf.At(off + tlo), tlen * es, From(s), scratch + From(s) * myLen * es, myLen * es, ctx);
            }
            for (int k = 0; k < _n; k++) _sources[k] = k == _me ? (nint)buf.At(off + myLo) : (nint)(scratch + k * myLen * es);
            Reducer.Reduce(buf.DType, op, _sources, _n, buf.At(off + myLo), myLen);
            for (int s = 1; s < _n; s++) // all-gather of the reduced parts
            {
                Part(n, From(s), es, out long flo, out long flen);
                Exchange(To(s), buf.At(off + myLo), myLen * es, From(s), buf.At(off + flo), flen * es, ctx);
            }
        }
    }

    internal override void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op)
    {
        Begin(ctx);
        int es = input.ElementSize;
        var offsets = new long[_n];
        for (int i = 1; i < _n; i++) offsets[i] = offsets[i - 1] + counts[i - 1];
        long seg = Math.Max(1, SegmentBytes / es / _n);
        long max = counts.Max();
        for (long off = 0; off < max; off += seg)
        {
            long myLen = Math.Clamp(counts[_me] - off, 0, seg);
            byte* scratch = Scratch((long)_n * seg * es);
            for (int s = 1; s < _n; s++)
            {
                int to = To(s), from = From(s);
                long tlen = Math.Clamp(counts[to] - off, 0, seg);
                Exchange(to, input.At(offsets[to] + off), tlen * es, from, scratch + from * seg * es, myLen * es, ctx);
            }
            for (int k = 0; k < _n; k++) _sources[k] = k == _me ? (nint)input.At(offsets[_me] + off) : (nint)(scratch + k * seg * es);
            Reducer.Reduce(input.DType, op, _sources, _n, output.At(off), myLen);
        }
    }

    internal override void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts)
    {
        Begin(ctx);
        int es = input.ElementSize;
        var offsets = new long[_n];
        for (int i = 1; i < _n; i++) offsets[i] = offsets[i - 1] + counts[i - 1];
        Copy(input.Ptr, output.At(offsets[_me]), input.Bytes);
        for (int s = 1; s < _n; s++)
        {
            int from = From(s);
            Exchange(To(s), input.Ptr, input.Bytes, from, output.At(offsets[from]), counts[from] * es, ctx);
        }
    }

    internal override void BroadcastCore(in OpContext ctx, HostBuffer buf, int src)
    {
        Begin(ctx);
        if (_me == src)
            for (int s = 1; s < _n; s++) Exchange(To(s), buf.Ptr, buf.Bytes, To(s), null, 0, ctx);
        else
            Exchange(src, null, 0, src, buf.Ptr, buf.Bytes, ctx);
    }

    internal override void ReduceCore(in OpContext ctx, HostBuffer buf, int dst, ReduceOp op)
    {
        Begin(ctx);
        int es = buf.ElementSize;
        long seg = Math.Max(1, SegmentBytes / es / _n);
        for (long off = 0; off < buf.Count; off += seg)
        {
            long n = Math.Min(seg, buf.Count - off);
            if (_me != dst) { Exchange(dst, buf.At(off), n * es, dst, null, 0, ctx); continue; }
            byte* scratch = Scratch((long)_n * seg * es);
            for (int k = 0; k < _n; k++)
            {
                if (k == _me) { _sources[k] = (nint)buf.At(off); continue; }
                Exchange(k, null, 0, k, scratch + k * seg * es, n * es, ctx);
                _sources[k] = (nint)(scratch + k * seg * es);
            }
            Reducer.Reduce(buf.DType, op, _sources, _n, buf.At(off), n);
        }
    }

    internal override void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input)
    {
        Begin(ctx);
        int es = input.ElementSize;
        long block = input.Count / _n;
        Copy(input.At(_me * block), output.At(_me * block), block * es);
        for (int s = 1; s < _n; s++)
            Exchange(To(s), input.At(To(s) * block), block * es, From(s), output.At(From(s) * block), block * es, ctx);
    }
}
