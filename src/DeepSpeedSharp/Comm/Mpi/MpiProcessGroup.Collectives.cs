using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Mpi;

internal sealed unsafe partial class MpiProcessGroup
{
    internal override void BarrierCore(in OpContext ctx)
    {
        Begin(ctx);
        try
        {
            _mpi.Check(_mpi.Barrier(_coll), "MPI_Barrier");
        }
        finally { End(); }
    }

    internal override void AllReduceCore(in OpContext ctx, HostBuffer buf, ReduceOp op)
    {
        Begin(ctx);
        try
        {
            if (ElementConvert.IsHalf(buf.DType))
            {
                float* f = F32(buf.Count);
                ElementConvert.ToFloat(buf.DType, buf.Ptr, f, buf.Count);
                for (long off = 0; off < buf.Count; off += _max)
                    _mpi.Check(_mpi.Allreduce((void*)_mpi.InPlace, f + off, (int)Math.Min(_max, buf.Count - off), _mpi.Float, _mpi.OpOf(op), _coll), "MPI_Allreduce");
                ElementConvert.FromFloat(buf.DType, f, buf.Ptr, buf.Count, op == ReduceOp.Avg ? _n : 1);
            }
            else
            {
                var type = _mpi.TypeOf(buf.DType);
                for (long off = 0; off < buf.Count; off += _max)
                    _mpi.Check(_mpi.Allreduce((void*)_mpi.InPlace, buf.At(off), (int)Math.Min(_max, buf.Count - off), type, _mpi.OpOf(op), _coll), "MPI_Allreduce");
                if (op == ReduceOp.Avg) ElementConvert.Divide(buf.DType, buf.Ptr, buf.Count, _n);
            }
        }
        finally { End(); }
    }

    internal override void ReduceCore(in OpContext ctx, HostBuffer buf, int dst, ReduceOp op)
    {
        Begin(ctx);
        try
        {
            ReduceTo(dst, buf, buf, op);
        }
        finally { End(); }
    }

    /// <summary>MPI_Reduce of <paramref name="src"/> onto group rank <paramref name="root"/>'s <paramref name="dst"/> (may alias), chunked, 16-bit via float32.</summary>
    private void ReduceTo(int root, HostBuffer src, HostBuffer dst, ReduceOp op)
    {
        bool half = ElementConvert.IsHalf(src.DType), me = root == _me;
        long chunk = half ? Math.Min(_max, 1 << 24) : _max;
        for (long off = 0; off < src.Count; off += chunk)
        {
            int n = (int)Math.Min(chunk, src.Count - off);
            if (half)
            {
                float* f = F32(n);
                ElementConvert.ToFloat(src.DType, src.At(off), f, n);
                _mpi.Check(_mpi.Reduce(me ? (void*)_mpi.InPlace : f, me ? f : null, n, _mpi.Float, _mpi.OpOf(op), root, _coll), "MPI_Reduce");
                if (me) ElementConvert.FromFloat(src.DType, f, dst.At(off), n, op == ReduceOp.Avg ? _n : 1);
            }
            else
            {
                void* s = me && src.Ptr == dst.Ptr ? (void*)_mpi.InPlace : src.At(off);
                _mpi.Check(_mpi.Reduce(s, me ? dst.At(off) : null, n, _mpi.TypeOf(src.DType), _mpi.OpOf(op), root, _coll), "MPI_Reduce");
                if (me && op == ReduceOp.Avg) ElementConvert.Divide(src.DType, dst.At(off), n, _n);
            }
        }
    }

    internal override void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op)
    {
        Begin(ctx);
        try
        {
            var offsets = Offsets(counts);
            if (input.Count <= _max)
            {
                var c = stackalloc int[_n];
                for (int i = 0; i < _n; i++) c[i] = (int)counts[i];
                if (ElementConvert.IsHalf(input.DType))
                {
                    float* f = F32(input.Count + counts[_me]);
                    ElementConvert.ToFloat(input.DType, input.Ptr, f, input.Count);
                    _mpi.Check(_mpi.ReduceScatter(f, f + input.Count, c, _mpi.Float, _mpi.OpOf(op), _coll), "MPI_Reduce_scatter");
                    ElementConvert.FromFloat(input.DType, f + input.Count, output.Ptr, counts[_me], op == ReduceOp.Avg ? _n : 1);
                }
                else
                {
                    _mpi.Check(_mpi.ReduceScatter(input.Ptr, output.Ptr, c, _mpi.TypeOf(input.DType), _mpi.OpOf(op), _coll), "MPI_Reduce_scatter");
                    if (op == ReduceOp.Avg) ElementConvert.Divide(input.DType, output.Ptr, output.Count, _n);
                }
            }
            else
            {
                for (int r = 0; r < _n; r++) ReduceTo(r, input.Slice(offsets[r], counts[r]), output, op); // counts over MPI's int limit
            }
        }
        finally { End(); }
    }

    internal override void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts)
    {
        Begin(ctx);
        try
        {
            var offsets = Offsets(counts);
            int es = input.ElementSize;
            if (output.Bytes <= _max)
            {
                var c = stackalloc int[_n];
                var d = stackalloc int[_n];
                for (int i = 0; i < _n; i++) { c[i] = (int)(counts[i] * es); d[i] = (int)(offsets[i] * es); }
                bool inPlace = input.Ptr == output.At(offsets[_me]) && input.Count > 0;
                _mpi.Check(_mpi.Allgatherv(inPlace ? (void*)_mpi.InPlace : input.Ptr, c[_me], _mpi.Byte, output.Ptr, c, d, _mpi.Byte, _coll), "MPI_Allgatherv");
            }
            else
            {
                Copy(input.Ptr, output.At(offsets[_me]), input.Bytes);
                for (int r = 0; r < _n; r++) BcastBytes(output.At(offsets[r]), counts[r] * es, r);
            }
        }
        finally { End(); }
    }

    internal override void BroadcastCore(in OpContext ctx, HostBuffer buf, int src)
    {
        Begin(ctx);
        try
        {
            BcastBytes(buf.Ptr, buf.Bytes, src);
        }
        finally { End(); }
    }

    private void BcastBytes(byte* p, long bytes, int root)
    {
        for (long off = 0; off < bytes; off += _max)
            _mpi.Check(_mpi.Bcast(p + off, (int)Math.Min(_max, bytes - off), _mpi.Byte, root, _coll), "MPI_Bcast");
    }

    internal override void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input)
    {
        Begin(ctx);
        try
        {
            long block = input.Bytes / _n;
            if (input.Bytes <= _max)
                _mpi.Check(_mpi.Alltoall(input.Ptr, (int)block, _mpi.Byte, output.Ptr, (int)block, _mpi.Byte, _coll), "MPI_Alltoall");
            else
            {
                Copy(input.Ptr + _me * block, output.Ptr + _me * block, block);
                for (int s = 1; s < _n; s++)
                {
                    int to = (_me + s) % _n, from = (_me - s + _n) % _n;
                    for (long off = 0; off < block; off += _max)
                    {
                        int len = (int)Math.Min(_max, block - off);
                        _mpi.Check(_mpi.Sendrecv(input.Ptr + to * block + off, len, _mpi.Byte, to, 1, output.Ptr + from * block + off, len, _mpi.Byte, from, 1, _coll, _mpi.StatusIgnore), "MPI_Sendrecv");
                    }
                }
            }
        }
        finally { End(); }
    }

    private static long[] Offsets(long[] counts)
    {
        var o = new long[counts.Length];
        for (int i = 1; i < counts.Length; i++) o[i] = o[i - 1] + counts[i - 1];
        return o;
    }

    private static void Copy(byte* from, byte* to, long bytes)
    {
        if (bytes > 0 && from != to) Buffer.MemoryCopy(from, to, bytes, bytes);
    }
}
