using System.Numerics;
using System.Runtime.CompilerServices;
using DeepSpeedSharp.Comm.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// <see cref="BlockQuantizer"/>'s work in one pass over host memory with SIMD, for contiguous CPU tensors (float32 or
/// bfloat16 in; float32 out, or bfloat16 when written): the tensor-op path makes six passes and allocates four
/// temporaries per call, which made qgZ cost more than the links it saves. The arithmetic is the tensor path's, operation for operation (max|x| in
/// float32, scale = max / 127 or 1 for an all-zero block, x / scale rounded half to even, clamped to ±127; dequantized
/// as value × scale, then added), so both paths give the same bytes and values.
/// </summary>
internal static unsafe class BlockQuantizerKernel
{
    /// <summary>True when <paramref name="x"/> can be read in place: contiguous, on the CPU, float32 or bfloat16.</summary>
    public static bool CanRead(Tensor x) => x.device_type == DeviceType.CPU && x.is_contiguous() && x.dtype is ScalarType.Float32 or ScalarType.BFloat16;

    /// <summary>
    /// True when <paramref name="t"/> can be written in place: contiguous on the CPU, float32, or bfloat16 when not adding
    /// (rounded to nearest even, as a float32 → bfloat16 copy does).
    /// </summary>
    public static bool CanWrite(Tensor t, bool add) =>
        t.device_type == DeviceType.CPU && t.is_contiguous() && (t.dtype == ScalarType.Float32 || (!add && t.dtype == ScalarType.BFloat16));

    /// <summary>True when int8 <paramref name="values"/> and float32 <paramref name="scales"/> are contiguous CPU tensors.</summary>
    public static bool CanHold(Tensor values, Tensor scales) =>
        values.device_type == DeviceType.CPU && values.is_contiguous() && scales.device_type == DeviceType.CPU && scales.is_contiguous();

    /// <summary>Quantizes the <c>x.numel()</c> elements of <paramref name="x"/>; the padding of the last block becomes 0.</summary>
    public static void Quantize(Tensor x, Tensor values, Tensor scales, long block)
    {
        long n = x.numel(), blocks = BlockQuantizer.Blocks(n, block);
        byte* src = n == 0 ? null : StagingPool.PointerOf(x);
        bool bf16 = x.dtype == ScalarType.BFloat16;
        var v = (sbyte*)StagingPool.PointerOf(values);
        var s = (float*)StagingPool.PointerOf(scales);
        for (long b = 0; b < blocks; b++)
        {
            long lo = b * block, len = Math.Clamp(n - lo, 0, block);
            float scale = MaxAbs(src, bf16, lo, len) / 127f;
            if (scale == 0) scale = 1f;
            s[b] = scale;
            QuantizeBlock(src, bf16, lo, len, scale, v + lo);
            new Span<sbyte>(v + lo + len, (int)(block - len)).Clear();
        }
    }

    /// <summary>Writes (or adds, with <paramref name="add"/>) the first <c>target.numel()</c> dequantized elements into <paramref name="target"/> (<see cref="CanWrite"/>).</summary>
    public static void Dequantize(Tensor values, Tensor scales, Tensor target, long block, bool add)
    {
        long n = target.numel();
        if (n == 0) return;
        var v = (sbyte*)StagingPool.PointerOf(values);
        var s = (float*)StagingPool.PointerOf(scales);
        byte* t = StagingPool.PointerOf(target);
        bool bf16 = target.dtype == ScalarType.BFloat16;
        for (long lo = 0, b = 0; lo < n; lo += block, b++)
        {
            if (bf16) DequantizeBlockBf16(v + lo, s[b], (ushort*)t + lo, Math.Min(block, n - lo));
            else DequantizeBlock(v + lo, s[b], (float*)t + lo, Math.Min(block, n - lo), add);
        }
    }

    private static float Load(byte* src, bool bf16, long i) =>
        bf16 ? BitConverter.Int32BitsToSingle(((ushort*)src)[i] << 16) : ((float*)src)[i];

    /// <summary>2 × Vector&lt;float&gt;.Count elements from <paramref name="i"/> on, widened from bfloat16 when needed.</summary>
    private static void Load2(byte* src, bool bf16, long i, out Vector<float> a, out Vector<float> b)
    {
        if (bf16)
        {
            Vector.Widen(Unsafe.ReadUnaligned<Vector<ushort>>((ushort*)src + i), out Vector<uint> lo, out Vector<uint> hi);
            a = Vector.AsVectorSingle(lo << 16);
            b = Vector.AsVectorSingle(hi << 16);
        }
        else
        {
            a = Unsafe.ReadUnaligned<Vector<float>>((float*)src + i);
            b = Unsafe.ReadUnaligned<Vector<float>>((float*)src + i + Vector<float>.Count);
        }
    }

    private static float MaxAbs(byte* src, bool bf16, long lo, long len)
    {
        int w = 2 * Vector<float>.Count;
        long i = 0;
        var m = Vector<float>.Zero;
        for (; i + w <= len; i += w)
        {
            Load2(src, bf16, lo + i, out var a, out var b);
            m = Vector.Max(m, Vector.Max(Vector.Abs(a), Vector.Abs(b)));
        }
        float max = 0;
        for (int k = 0; k < Vector<float>.Count; k++) max = MathF.Max(max, m[k]);
        for (; i < len; i++) max = MathF.Max(max, MathF.Abs(Load(src, bf16, lo + i)));
        return max;
    }

    private static void QuantizeBlock(byte* src, bool bf16, long lo, long len, float scale, sbyte* dst)
    {
        int c = Vector<float>.Count, w = 4 * c;
        var sv = new Vector<float>(scale);
        var top = new Vector<float>(127f);
        var bottom = new Vector<float>(-127f);
        long i = 0;
        for (; i + w <= len; i += w)
        {
            Load2(src, bf16, lo + i, out var a, out var b);
            Load2(src, bf16, lo + i + 2 * c, out var d, out var e);
            Vector<int> Q(Vector<float> x) => Vector.ConvertToInt32(Vector.Min(Vector.Max(Vector.Round(x / sv), bottom), top));
            Unsafe.WriteUnaligned(dst + i, Vector.Narrow(Vector.Narrow(Q(a), Q(b)), Vector.Narrow(Q(d), Q(e))));
        }
        for (; i < len; i++) dst[i] = (sbyte)Math.Clamp(MathF.Round(Load(src, bf16, lo + i) / scale), -127f, 127f);
    }

    /// <summary>Vector&lt;sbyte&gt;.Count int8 values from <paramref name="v"/>, as four float vectors times the scale.</summary>
    private static void Scaled(sbyte* v, Vector<float> scale, out Vector<float> f0, out Vector<float> f1, out Vector<float> f2, out Vector<float> f3)
    {
        Vector.Widen(Unsafe.ReadUnaligned<Vector<sbyte>>(v), out Vector<short> s0, out Vector<short> s1);
        Vector.Widen(s0, out Vector<int> i0, out Vector<int> i1);
        Vector.Widen(s1, out Vector<int> i2, out Vector<int> i3);
        f0 = Vector.ConvertToSingle(i0) * scale;
        f1 = Vector.ConvertToSingle(i1) * scale;
        f2 = Vector.ConvertToSingle(i2) * scale;
        f3 = Vector.ConvertToSingle(i3) * scale;
    }

    private static void DequantizeBlock(sbyte* v, float scale, float* t, long len, bool add)
    {
        int c = Vector<float>.Count, w = Vector<sbyte>.Count;
        var sv = new Vector<float>(scale);
        long i = 0;
        for (; i + w <= len; i += w)
        {
            Scaled(v + i, sv, out var f0, out var f1, out var f2, out var f3);
            Store(t + i, f0, add);
            Store(t + i + c, f1, add);
            Store(t + i + 2 * c, f2, add);
            Store(t + i + 3 * c, f3, add);
        }
        for (; i < len; i++) t[i] = add ? t[i] + v[i] * scale : v[i] * scale;
    }

    private static void DequantizeBlockBf16(sbyte* v, float scale, ushort* t, long len)
    {
        int w = Vector<sbyte>.Count;
        var sv = new Vector<float>(scale);
        long i = 0;
        for (; i + w <= len; i += w)
        {
            Scaled(v + i, sv, out var f0, out var f1, out var f2, out var f3);
            Unsafe.WriteUnaligned(t + i, Vector.Narrow(ToBf16(f0), ToBf16(f1)));
            Unsafe.WriteUnaligned(t + i + w / 2, Vector.Narrow(ToBf16(f2), ToBf16(f3)));
        }
        for (; i < len; i++) t[i] = ToBf16(v[i] * scale);
    }

    /// <summary>float32 → bfloat16 bits, rounded to nearest even (NaN → 0x7FC0), as c10::BFloat16 converts.</summary>
    private static Vector<uint> ToBf16(Vector<float> x)
    {
        var bits = Vector.AsVectorUInt32(x);
        var rounded = (bits + ((bits >> 16) & Vector<uint>.One) + new Vector<uint>(0x7FFF)) >> 16;
        return Vector.ConditionalSelect(Vector.AsVectorUInt32(Vector.Equals(x, x)), rounded, new Vector<uint>(0x7FC0));
    }

    private static ushort ToBf16(float x)
    {
        if (float.IsNaN(x)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return (ushort)((bits + ((bits >> 16) & 1) + 0x7FFF) >> 16);
    }

    private static void Store(float* p, Vector<float> x, bool add) =>
        Unsafe.WriteUnaligned(p, add ? Unsafe.ReadUnaligned<Vector<float>>(p) + x : x);
}
