using DeepSpeedSharp.Optim;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Optim;

public class OptimGradientClippingTests
{
    private static float[] Values(Tensor t) => t.to(ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void GlobalNormIsL2OverAllGradientsSkippingNulls()
    {
        // sqrt(3² + 4² + 12²) = sqrt(169) = 13
        using var a = tensor(new float[] { 3, 4 });
        using var b = tensor(new float[] { 12 });
        Assert.Equal(13.0, GradientClipping.GlobalNorm(new Tensor?[] { a, null, b }), 6);
        Assert.Equal(0.0, GradientClipping.GlobalNorm(Array.Empty<Tensor?>()));
    }

    [Fact]
    public void GlobalNormAcceptsBf16AndFp64()
    {
        // bf16 part: 1² + 2² + 2² = 9 (exact in bf16); fp64 part: 4² + 0² = 16; total sqrt(9 + 16) = 5
        using var a = tensor(new float[] { 1, 2, 2 }).to(ScalarType.BFloat16);
        using var b = tensor(new double[] { 4, 0 });
        Assert.Equal(5.0, GradientClipping.GlobalNorm(new Tensor?[] { a, b }), 12);
    }

    [Fact]
    public void GlobalNormPropagatesInfAndNan()
    {
        using var ok = tensor(new float[] { 1, 2 });
        using var inf = tensor(new float[] { float.PositiveInfinity });
        using var nan = tensor(new float[] { float.NaN, 1 });
        Assert.True(double.IsPositiveInfinity(GradientClipping.GlobalNorm(new Tensor?[] { ok, inf })));
        Assert.True(double.IsNaN(GradientClipping.GlobalNorm(new Tensor?[] { ok, nan })));
    }

    [Fact]
    public void ClipScalesByMaxNormOverNormPlusEpsilon()
    {
        using var a = tensor(new float[] { 3, 4 });
        using var b = tensor(new float[] { 12 });
        var norm = GradientClipping.ClipByGlobalNorm(new Tensor?[] { a, b }, maxNorm: 6.5);
        Assert.Equal(13.0, norm, 6);
        // coefficient = 6.5 / (13 + 1e-6) = 0.49999996...; 3 * that = 1.49999988, 12 * that = 5.9999995
        var c = 6.5 / (13 + 1e-6);
        Assert.Equal(new[] { (float)(3 * c), (float)(4 * c) }, Values(a));
        Assert.Equal((float)(12 * c), Values(b)[0]);
        Assert.Equal(6.5, GradientClipping.GlobalNorm(new Tensor?[] { a, b }), 5);
    }

    [Fact]
    public void NoClippingWhenNormIsWithinMax()
    {
        using var a = tensor(new float[] { 3, 4 });
        // 5 + 1e-6 < 5.00001, so the coefficient is above 1: untouched.
        Assert.Equal(5.0, GradientClipping.ClipByGlobalNorm(new Tensor?[] { a }, 5.00001), 6);
        Assert.Equal(new float[] { 3, 4 }, Values(a));
        // Exactly at the max, DeepSpeed still scales by 5 / (5 + 1e-6) (coefficient just below 1).
        GradientClipping.ClipByGlobalNorm(new Tensor?[] { a }, 5.0);
        Assert.True(Values(a)[1] < 4f);
    }

    [Fact]
    public void PrecomputedNormIsUsed()
    {
        // The local norm is 5 but the (e.g. all-reduced) global norm is 10: scale by 2.5 / (10 + 1e-6).
        using var a = tensor(new float[] { 3, 4 });
        var returned = GradientClipping.ClipByGlobalNorm(new Tensor?[] { a }, 2.5, precomputedNorm: 10);
        Assert.Equal(10.0, returned);
        Assert.Equal((float)(4 * 2.5 / (10 + 1e-6)), Values(a)[1]);
    }

    [Fact]
    public void NonFiniteNormPropagatesLikeDeepSpeed()
    {
        using var a = tensor(new float[] { 1, float.NaN });
        var norm = GradientClipping.ClipByGlobalNorm(new Tensor?[] { a }, 1.0);
        Assert.True(double.IsNaN(norm));
        Assert.True(float.IsNaN(Values(a)[0])); // multiplied by min(1, NaN) = NaN, as torch.min does

        using var b = tensor(new float[] { 2, float.PositiveInfinity });
        GradientClipping.ClipByGlobalNorm(new Tensor?[] { b }, 1.0);
        Assert.Equal(0f, Values(b)[0]); // coefficient 1 / inf = 0
    }

    [Fact]
    public void NonPositiveMaxNormIsRejected()
    {
        using var a = tensor(new float[] { 1 });
        var e = Assert.Throws<ArgumentException>(() => GradientClipping.ClipByGlobalNorm(new Tensor?[] { a }, 0));
        Assert.Contains("gradient_clipping", e.Message);
    }
}
