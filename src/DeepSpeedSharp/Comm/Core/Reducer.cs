using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// Vectorised element-wise reductions over several sources, always combined in source order 0..n-1 so results
/// are bit-identical run to run. 16-bit floats are accumulated in float32 and rounded once (to nearest even).
/// The destination may alias any source (every element is read from all sources before it is written).
/// </summary>
internal static unsafe class Reducer
{
    /// <summary>
    /// dst[i] = sources[0][i] ∘ sources[1][i] ∘ … in source order; when <paramref name="dst2"/> is given the result is
    /// stored there too (in the same pass, so a caller that needs the result twice reads the sources once).
    /// </summary>
    public static void Reduce(torch.ScalarType dtype, ReduceOp op, nint* sources, int nsrc, byte* dst, long count, byte* dst2 = null)
    {
        if (count == 0) return;
        if (op == ReduceOp.Avg && !CommDType.IsFloating(dtype))
            throw new ArgumentException($"ReduceOp.Avg needs a floating-point tensor; got {dtype}. Use ReduceOp.Sum and divide.");
        switch (dtype)
        {
            case torch.ScalarType.Float32: Dispatch<float>(op, sources, nsrc, (float*)dst, (float*)dst2, count); break;
            case torch.ScalarType.Float64: Dispatch<double>(op, sources, nsrc, (double*)dst, (double*)dst2, count); break;
            case torch.ScalarType.Int32: Dispatch<int>(op, sources, nsrc, (int*)dst, (int*)dst2, count); break;
            case torch.ScalarType.Int64: Dispatch<long>(op, sources, nsrc, (long*)dst, (long*)dst2, count); break;
            case torch.ScalarType.BFloat16: BFloat16(op, sources, nsrc, (ushort*)dst, (ushort*)dst2, count); break;
            case torch.ScalarType.Float16: Float16(op, sources, nsrc, (Half*)dst, (Half*)dst2, count); break;
            default: throw new ArgumentException($"dtype {dtype} cannot be reduced; use {CommDType.Describe}.");
        }
    }

    /// <summary>An element-wise combine, as a type so each (dtype, op) pair gets its own specialised loop.</summary>
    private interface ICombine
    {
        static abstract Vector512<T> Apply<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T>;
        static abstract T Apply<T>(T a, T b) where T : unmanaged, INumber<T>;
    }

    private struct SumOp : ICombine
    {
        public static Vector512<T> Apply<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => a + b;
        public static T Apply<T>(T a, T b) where T : unmanaged, INumber<T> => a + b;
    }

    private struct MaxOp : ICombine
    {
        public static Vector512<T> Apply<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.Max(a, b);
        public static T Apply<T>(T a, T b) where T : unmanaged, INumber<T> => T.IsNaN(a) || a > b ? a : b;
    }

    private struct MinOp : ICombine
    {
        public static Vector512<T> Apply<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.Min(a, b);
        public static T Apply<T>(T a, T b) where T : unmanaged, INumber<T> => T.IsNaN(a) || a < b ? a : b;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Combine<T>(ReduceOp op, Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => op switch
    {
        ReduceOp.Max => Vector512.Max(a, b),
        ReduceOp.Min => Vector512.Min(a, b),
        _ => a + b,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Combine<T>(ReduceOp op, T a, T b) where T : unmanaged, INumber<T> => op switch
    {
        ReduceOp.Max => T.IsNaN(a) || a > b ? a : b,
        ReduceOp.Min => T.IsNaN(a) || a < b ? a : b,
        _ => a + b,
    };

    private static void Dispatch<T>(ReduceOp op, nint* sources, int nsrc, T* dst, T* dst2, long count) where T : unmanaged, INumber<T>
    {
        switch (op)
        {
            case ReduceOp.Max: Generic<T, MaxOp>(sources, nsrc, dst, dst2, count, false); break;
            case ReduceOp.Min: Generic<T, MinOp>(sources, nsrc, dst, dst2, count, false); break;
            default: Generic<T, SumOp>(sources, nsrc, dst, dst2, count, op == ReduceOp.Avg); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // no slow first tier: a job may call this only a few times
    private static void Generic<T, TOp>(nint* sources, int nsrc, T* dst, T* dst2, long count, bool avg)
        where T : unmanaged, INumber<T> where TOp : struct, ICombine
    {
        int lanes = Vector512<T>.Count;
        long i = 0;
        T n = T.CreateChecked(nsrc);
        var nv = Vector512.Create(n);
        if (nsrc == 2 && !avg)
        {
            // The common case (two ranks on a node), two vectors per step.
            T* a = (T*)sources[0], b = (T*)sources[1];
            for (; i + 2 * lanes <= count; i += 2 * lanes)
            {
                var r0 = TOp.Apply(Vector512.Load(a + i), Vector512.Load(b + i));
                var r1 = TOp.Apply(Vector512.Load(a + i + lanes), Vector512.Load(b + i + lanes));
                r0.Store(dst + i);
                r1.Store(dst + i + lanes);
                if (dst2 != null) { r0.Store(dst2 + i); r1.Store(dst2 + i + lanes); }
            }
        }
        for (; i + lanes <= count; i += lanes)
        {
            var acc = Vector512.Load((T*)sources[0] + i);
            for (int k = 1; k < nsrc; k++) acc = TOp.Apply(acc, Vector512.Load((T*)sources[k] + i));
            if (avg) acc /= nv;
            acc.Store(dst + i);
            if (dst2 != null) acc.Store(dst2 + i);
        }
        for (; i < count; i++)
        {
            T acc = ((T*)sources[0])[i];
            for (int k = 1; k < nsrc; k++) acc = TOp.Apply(acc, ((T*)sources[k])[i]);
            if (avg) acc /= n;
            dst[i] = acc;
            if (dst2 != null) dst2[i] = acc;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // no slow first tier: a job may call this only a few times
    private static void BFloat16(ReduceOp op, nint* sources, int nsrc, ushort* dst, ushort* dst2, long count)
    {
        int lanes = Vector512<ushort>.Count; // 32 bf16 values = two float vectors
        float n = nsrc;
        var nv = Vector512.Create(n);
        bool avg = op == ReduceOp.Avg;
        long i = 0;
        for (; i + lanes <= count; i += lanes)
        {
            var (lo, hi) = Widen(Vector512.Load((ushort*)sources[0] + i));
            for (int k = 1; k < nsrc; k++)
            {
                var (l2, h2) = Widen(Vector512.Load((ushort*)sources[k] + i));
                lo = Combine(op, lo, l2);
                hi = Combine(op, hi, h2);
            }
            if (avg) { lo /= nv; hi /= nv; }
            var r = Vector512.Narrow(RoundToBf16(lo), RoundToBf16(hi));
            r.Store(dst + i);
            if (dst2 != null) r.Store(dst2 + i);
        }
        for (; i < count; i++)
        {
            float acc = BitConverter.Int32BitsToSingle(((ushort*)sources[0])[i] << 16);
            for (int k = 1; k < nsrc; k++) acc = Combine(op, acc, BitConverter.Int32BitsToSingle(((ushort*)sources[k])[i] << 16));
            if (avg) acc /= n;
            dst[i] = ToBf16(acc);
            if (dst2 != null) dst2[i] = dst[i];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>) Widen(Vector512<ushort> v)
    {
        var (lo, hi) = Vector512.Widen(v);
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> RoundToBf16(Vector512<float> f)
    {
        var bits = f.AsUInt32();
        var rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512.Create(1u))) >> 16;
        var nan = (bits >> 16) | Vector512.Create(0x40u);
        return Vector512.ConditionalSelect(Vector512.Equals(f, f).AsUInt32(), rounded, nan);
    }

    internal static ushort ToBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // no slow first tier: a job may call this only a few times
    private static void Float16(ReduceOp op, nint* sources, int nsrc, Half* dst, Half* dst2, long count)
    {
        float n = nsrc;
        bool avg = op == ReduceOp.Avg;
        for (long i = 0; i < count; i++)
        {
            float acc = (float)((Half*)sources[0])[i];
            for (int k = 1; k < nsrc; k++) acc = Combine(op, acc, (float)((Half*)sources[k])[i]);
            if (avg) acc /= n;
            dst[i] = (Half)acc;
            if (dst2 != null) dst2[i] = dst[i];
        }
    }
}
