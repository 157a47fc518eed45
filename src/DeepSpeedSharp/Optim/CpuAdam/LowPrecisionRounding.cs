using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepSpeedSharp.Optim.CpuAdam;

/// <summary>
/// fp32 → bf16 and fp32 → fp16 rounding (round to nearest, ties to even) in integer arithmetic, with scalar, 256-bit
/// and 512-bit forms that give identical bits. They reproduce <c>Tensor.to(BFloat16)</c> / <c>to(Float16)</c> of
/// libtorch, including subnormals (the hardware <c>vcvtneps2bf16</c> flushes those, so it is not used).
/// </summary>
/// <remarks>NaN becomes bf16 0x7FC0 (as c10::BFloat16 does) and fp16 0x7E00 with the sign kept (as c10::Half does);
/// fp16 overflow (|x| ≥ 65520) becomes ±infinity.</remarks>
internal static class LowPrecisionRounding
{
    private const uint Bf16QuietNaN = 0x7FC0;
    private const uint F32Infinity = 0x7F800000;
    private const uint F16Overflow = 0x47800000;     // 65536f: at and above, the result is inf (or NaN)
    private const uint F16MinNormal = 0x38800000;    // 2^-14: below, the result is subnormal or zero
    private const uint SubnormalMagic = 0x3F000000;  // 0.5f: adding it rounds to a multiple of 2^-24
    private const uint RebiasRounding = 0xC8000FFF;  // (15 − 127) << 23, plus 0xFFF for the rounding
    private const uint F16Infinity = 0x7C00;
    private const uint F16QuietNaN = 0x7E00;

    /// <summary>The bf16 bits of <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBFloat16(float x)
    {
        var bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)Bf16QuietNaN;
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>The fp16 bits of <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToHalf(float x)
    {
        var bits = BitConverter.SingleToUInt32Bits(x);
        var sign = bits & 0x80000000u;
        var abs = bits ^ sign;
        uint h;
        if (abs >= F16Overflow) h = abs > F32Infinity ? F16QuietNaN : F16Infinity;
        else if (abs < F16MinNormal)
            h = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(abs) + BitConverter.UInt32BitsToSingle(SubnormalMagic)) - SubnormalMagic;
        else h = (abs + RebiasRounding + ((abs >> 13) & 1u)) >> 13;
        return (ushort)(h | (sign >> 16));
    }

    /// <summary>bf16 bits of 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<ushort> ToBFloat16(Vector512<float> x)
    {
        var bits = x.AsUInt32();
        var rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One)) >> 16;
        var isNaN = ~Vector512.Equals(x, x).AsUInt32();
        var r = Vector512.ConditionalSelect(isNaN, Vector512.Create(Bf16QuietNaN), rounded);
        return Vector512.Narrow(r, r).GetLower();
    }

    /// <summary>bf16 bits of 8 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ushort> ToBFloat16(Vector256<float> x)
    {
        var bits = x.AsUInt32();
        var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        var isNaN = ~Vector256.Equals(x, x).AsUInt32();
        var r = Vector256.ConditionalSelect(isNaN, Vector256.Create(Bf16QuietNaN), rounded);
        return Vector256.Narrow(r, r).GetLower();
    }

    /// <summary>fp16 bits of 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<ushort> ToHalf(Vector512<float> x)
    {
        var bits = x.AsUInt32();
        var sign = bits & Vector512.Create(0x80000000u);
        var abs = bits ^ sign;
        var special = Vector512.ConditionalSelect(Vector512.GreaterThan(abs, Vector512.Create(F32Infinity)),
            Vector512.Create(F16QuietNaN), Vector512.Create(F16Infinity));
        var magic = Vector512.Create(SubnormalMagic);
        var subnormal = (abs.AsSingle() + magic.AsSingle()).AsUInt32() - magic;
        var normal = (abs + Vector512.Create(RebiasRounding) + ((abs >> 13) & Vector512<uint>.One)) >> 13;
        var h = Vector512.ConditionalSelect(Vector512.LessThan(abs, Vector512.Create(F16MinNormal)), subnormal, normal);
        h = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(F16Overflow)), special, h);
        h |= sign >> 16;
        return Vector512.Narrow(h, h).GetLower();
    }

    /// <summary>fp16 bits of 8 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ushort> ToHalf(Vector256<float> x)
    {
        var bits = x.AsUInt32();
        var sign = bits & Vector256.Create(0x80000000u);
        var abs = bits ^ sign;
        var special = Vector256.ConditionalSelect(Vector256.GreaterThan(abs, Vector256.Create(F32Infinity)),
            Vector256.Create(F16QuietNaN), Vector256.Create(F16Infinity));
        var magic = Vector256.Create(SubnormalMagic);
        var subnormal = (abs.AsSingle() + magic.AsSingle()).AsUInt32() - magic;
        var normal = (abs + Vector256.Create(RebiasRounding) + ((abs >> 13) & Vector256<uint>.One)) >> 13;
        var h = Vector256.ConditionalSelect(Vector256.LessThan(abs, Vector256.Create(F16MinNormal)), subnormal, normal);
        h = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(F16Overflow)), special, h);
        h |= sign >> 16;
        return Vector256.Narrow(h, h).GetLower();
    }
}
