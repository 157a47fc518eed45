using DeepSpeedSharp.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Optim;

public class OptimFactoryTests
{
    private static Parameter[] Params() => new[] { new Parameter(ones(3)) };

    private static optim.Optimizer Make(string type, bool adamWMode = true, bool torchAdam = false, bool amsgrad = false,
        bool biasCorrection = true, double momentum = 0, double dampening = 0, bool nesterov = false, Parameter[]? ps = null) =>
        OptimizerFactory.Create(type, ps ?? Params(), lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1,
            biasCorrection, amsgrad, adamWMode, torchAdam, momentum, dampening, nesterov);

    [Theory]
    [InlineData("adam", true, true)]   // adam_w_mode defaults to true: "Adam" is AdamW
    [InlineData("Adam", false, false)] // only adam + adam_w_mode=false gives L2 Adam
    [InlineData("adamw", false, true)] // the AdamW type forces decoupled decay
    [InlineData("AdamW", true, true)]
    public void AdamTypesBuildFusedAdamWithDeepSpeedsEffectiveMode(string type, bool adamWMode, bool expectedAdamW)
    {
        using var opt = Make(type, adamWMode);
        var fused = Assert.IsType<FusedAdam>(opt);
        Assert.Equal(expectedAdamW, fused.AdamWMode);
        Assert.Equal(0.01, fused.ParamGroups.Single().LearningRate);
        Assert.Equal((0.9, 0.999), fused.Betas);
    }

    [Theory]
    [InlineData("adam", false, typeof(Adam))]
    [InlineData("adam", true, typeof(AdamW))]
    [InlineData("adamw", false, typeof(AdamW))]
    public void TorchAdamBuildsTorchSharpOptimizers(string type, bool adamWMode, Type expected)
    {
        using var opt = Make(type, adamWMode, torchAdam: true);
        Assert.IsType(expected, opt);
    }

    [Fact]
    public void TorchAdamDecaysLikeFusedAdam()
    {
        // Same config through both paths gives the same parameters after a few steps.
        var a = Params();
        var b = Params();
        using var fused = Make("adamw", ps: a);
        using var torchAdamW = Make("adamw", torchAdam: true, ps: b);
        for (var s = 0; s < 5; s++)
        {
            a[0].grad = full(3, 0.5f * (s + 1));
            b[0].grad = full(3, 0.5f * (s + 1));
            fused.step();
            torchAdamW.step();
        }
        Assert.True(a[0].allclose(b[0], rtol: 1e-6, atol: 0));
        Assert.True(a[0].max().item<float>() < 0.99f);
    }

    [Fact]
    public void SgdBuildsTorchSharpSgdWithMomentum()
    {
        using var opt = Make("SGD", momentum: 0.9, nesterov: true);
        var sgd = Assert.IsType<SGD>(opt);
        Assert.Equal(0.9, sgd.Momentum);
    }

    [Fact]
    public void UnknownTypeNamesItAndListsSupportedOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => Make("lamb"));
        Assert.Contains("'lamb'", e.Message);
        Assert.Contains("adam, adamw, sgd", e.Message);
    }

    [Fact]
    public void FusedAdamRejectsAmsgradButTorchAdamAcceptsIt()
    {
        Assert.Contains("AMSGrad", Assert.Throws<ArgumentException>(() => Make("adam", amsgrad: true)).Message);
        using var opt = Make("adam", amsgrad: true, torchAdam: true);
        Assert.IsType<AdamW>(opt);
    }

    [Fact]
    public void BiasCorrectionFalseWithTorchAdamIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Make("adam", torchAdam: true, biasCorrection: false));
        Assert.Contains("bias_correction", e.Message);
    }

    [Fact]
    public void NesterovNeedsMomentumAndNoDampening()
    {
        Assert.Contains("nesterov", Assert.Throws<ArgumentException>(() => Make("sgd", nesterov: true)).Message);
        Assert.Contains("dampening",
            Assert.Throws<ArgumentException>(() => Make("sgd", momentum: 0.9, dampening: 0.1, nesterov: true)).Message);
    }

    [Fact]
    public void BadHyperParametersNameTheirKey()
    {
        var e = Assert.Throws<ArgumentException>(() => OptimizerFactory.Create("adam", Params(), -1, 0.9, 0.999, 1e-8, 0,
            true, false, true, false, 0, 0, false));
        Assert.Contains("optimizer.params.lr", e.Message);
        e = Assert.Throws<ArgumentException>(() => OptimizerFactory.Create("adam", Params(), 0.1, 1.5, 0.999, 1e-8, 0,
            true, false, true, false, 0, 0, false));
        Assert.Contains("betas[0]", e.Message);
    }

    [Theory]
    [InlineData("adamw", false)]
    [InlineData("adam", true)]
    [InlineData("sgd", false)]
    public void ParameterGroupsOverrideLrAndWeightDecay(string type, bool torchAdam)
    {
        var decayed = new Parameter(ones(2));
        var frozen = new Parameter(ones(2));
        var groups = new[]
        {
            new ParameterGroupSpec(new[] { decayed }),
            new ParameterGroupSpec(new[] { frozen }, LearningRate: 0.0, WeightDecay: 0.0),
        };
        using var opt = OptimizerFactory.Create(type, groups, 0.1, 0.9, 0.999, 1e-8, 0.5, true, false, true, torchAdam, 0, 0, false);
        Assert.Equal(new[] { 0.1, 0.0 }, opt.ParamGroups.Select(g => g.LearningRate).ToArray());
        decayed.grad = zeros(2);
        frozen.grad = ones(2);
        opt.step();
        // Zero gradient: only weight decay moves `decayed`; the lr-0 group does not move.
        Assert.True(decayed[0].item<float>() < 1f);
        Assert.Equal(1f, frozen[0].item<float>());
    }
}
