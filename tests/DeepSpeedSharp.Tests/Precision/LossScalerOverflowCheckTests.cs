using DeepSpeedSharp.Precision;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>OverflowCheck over fp32, fp16 and bf16 gradients.</summary>
public class LossScalerOverflowCheckTests
{
    [Fact]
    public void FiniteGradientsDoNotOverflowEvenWhenTheirSumWould()
    {
        // 3e38 + 3e38 overflows float32 as a sum (DeepSpeed's float(x.float().sum()) check would flag it); each value is finite.
        using var big = tensor(new float[] { 3e38f, 3e38f });
        using var small = tensor(new float[] { 1, -2, 0 });
        Assert.False(OverflowCheck.HasOverflow(new Tensor?[] { big, null, small }));
        Assert.False(OverflowCheck.HasOverflow(big));
        Assert.False(OverflowCheck.HasOverflow(Array.Empty<Tensor?>()));
        Assert.False(OverflowCheck.HasOverflow(new Tensor?[] { null }));
    }

    [Theory]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(float.NaN)]
    public void AnyInfOrNanOverflows(float bad)
    {
        using var ok = tensor(new float[] { 1, 2 });
        using var broken = tensor(new float[] { 0, bad, 3 });
        Assert.True(OverflowCheck.HasOverflow(new Tensor?[] { ok, null, broken }));
        Assert.True(OverflowCheck.HasOverflow(new Tensor?[] { broken, ok }));
        Assert.True(OverflowCheck.HasOverflow(broken));
    }

    [Fact]
    public void HalfAndBFloat16()
    {
        // 70000 exceeds fp16's max (65504) and becomes inf on conversion; bf16 holds it.
        using var src = tensor(new float[] { 1, 70000 });
        using var half = src.to(ScalarType.Float16);
        using var bf = src.to(ScalarType.BFloat16);
        using var maxSrc = tensor(new float[] { 65504, -65504 });
        using var halfOk = maxSrc.to(ScalarType.Float16);
        Assert.True(OverflowCheck.HasOverflow(half));
        Assert.False(OverflowCheck.HasOverflow(bf));
        Assert.False(OverflowCheck.HasOverflow(new Tensor?[] { halfOk, bf }));
        Assert.True(OverflowCheck.HasOverflow(new Tensor?[] { halfOk, bf, half }));
    }
}
