using System.Runtime.Intrinsics;
using DeepSpeedSharp.Optim.CpuAdam;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.CpuAdam;

/// <summary>The fp32 → bf16/fp16 rounding of the CPU Adam kernel against libtorch's <c>to(dtype)</c>, bit for bit.</summary>
public class CpuAdamRoundingTests
{
    private static ushort[] Ours(float[] x, Func<float, ushort> scalar, Func<Vector512<float>, Vector256<ushort>> v512,
        Func<Vector256<float>, Vector128<ushort>> v256, int path)
    {
        var o = new ushort[x.Length];
        var i = 0;
        if (path == 512)
            for (; i + 16 <= x.Length; i += 16) v512(Vector512.Create(x, i)).CopyTo(o, i);
        if (path == 256)
            for (; i + 8 <= x.Length; i += 8) v256(Vector256.Create(x, i)).CopyTo(o, i);
        for (; i < x.Length; i++) o[i] = scalar(x[i]);
        return o;
    }

    private static void AssertSameBits(ushort[] expected, ushort[] actual, float[] x, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < x.Length; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"{what}: {x[i]:R} (0x{BitConverter.SingleToUInt32Bits(x[i]):X8}) gave 0x{actual[i]:X4}, libtorch 0x{expected[i]:X4}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(256)]
    [InlineData(512)]
    public void BFloat16MatchesLibtorchBitForBit(int path)
    {
        var x = CpuAdamTestData.RoundingEdgeCases(20_000, 1);
        using var t = CpuAdamTestData.Tensor(x);
        using var reference = t.to(ScalarType.BFloat16);
        var ours = Ours(x, LowPrecisionRounding.ToBFloat16, LowPrecisionRounding.ToBFloat16, LowPrecisionRounding.ToBFloat16, path);
        AssertSameBits(CpuAdamTestData.Bits16(reference), ours, x, $"bf16 path {path}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(256)]
    [InlineData(512)]
    public void Float16MatchesLibtorchBitForBit(int path)
    {
        var x = CpuAdamTestData.RoundingEdgeCases(20_000, 2);
        using var t = CpuAdamTestData.Tensor(x);
        using var reference = t.to(ScalarType.Float16);
        var ours = Ours(x, LowPrecisionRounding.ToHalf, LowPrecisionRounding.ToHalf, LowPrecisionRounding.ToHalf, path);
        AssertSameBits(CpuAdamTestData.Bits16(reference), ours, x, $"fp16 path {path}");
    }

    [Fact]
    public void NaNStaysNaN()
    {
        var nan = BitConverter.UInt32BitsToSingle(0xFFC12345);
        Assert.True(BFloat16Bits(LowPrecisionRounding.ToBFloat16(nan)));
        Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(LowPrecisionRounding.ToHalf(nan))));
        Assert.True(BFloat16Bits(LowPrecisionRounding.ToBFloat16(Vector512.Create(nan)).GetElement(3)));
        Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(LowPrecisionRounding.ToHalf(Vector256.Create(nan)).GetElement(5))));
        static bool BFloat16Bits(ushort b) => float.IsNaN(BitConverter.UInt32BitsToSingle((uint)b << 16));
    }
}
