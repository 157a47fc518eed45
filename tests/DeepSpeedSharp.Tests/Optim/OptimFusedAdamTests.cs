using DeepSpeedSharp.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static DeepSpeedSharp.Tests.Optim.AdamTwins;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Optim;

public class OptimFusedAdamTests
{
    private const int Steps = 100;

    [Fact]
    public void AdamWModeMatchesTorchSharpAdamWAfter100Steps()
    {
        var (a, b) = TwinParameters(1);
        using var ours = new FusedAdam(a, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, adamWMode: true, weightDecay: 0.1);
        using var reference = new AdamW(b, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1);
        var before = a[0].detach().clone();
        RunSideBySide(ours, reference, a, b, 11);

        Assert.True(MaxRelativeDifference(a, b) < 1e-6, $"max relative difference {MaxRelativeDifference(a, b)}");
        // The parameters really moved (about lr per step), so the comparison is not between two untouched copies.
        Assert.True((a[0] - before).abs().max().item<float>() > 0.1f);
        Assert.Equal(Steps, ours.StepCount(a[0]));
    }

    [Fact]
    public void L2ModeMatchesTorchSharpAdamAfter100Steps()
    {
        var (a, b) = TwinParameters(2);
        using var ours = new FusedAdam(a, lr: 1e-2, beta1: 0.8, beta2: 0.999, eps: 1e-6, adamWMode: false, weightDecay: 0.05);
        using var reference = new Adam(b, lr: 1e-2, beta1: 0.8, beta2: 0.999, eps: 1e-6, weight_decay: 0.05);
        RunSideBySide(ours, reference, a, b, 12);
        Assert.True(MaxRelativeDifference(a, b) < 1e-6, $"max relative difference {MaxRelativeDifference(a, b)}");
    }

    [Fact]
    public void AdamWAndL2ModesDifferWhenWeightDecayIsSet()
    {
        var (a, b) = TwinParameters(3);
        using var w = new FusedAdam(a, lr: 1e-2, adamWMode: true, weightDecay: 0.5);
        using var l2 = new FusedAdam(b, lr: 1e-2, adamWMode: false, weightDecay: 0.5);
        RunSideBySide(w, l2, a, b, 13);
        Assert.True(MaxRelativeDifference(a, b) > 1e-3);
    }

    /// <summary>Plain double-precision Adam, written from DeepSpeed's multi_tensor_adam kernel formulas.</summary>
    private static void ReferenceStep(double[] p, double[] g, double[] m, double[] v, int t, double lr, double b1, double b2,
        double eps, double wd, bool biasCorrection, bool adamW)
    {
        var bc1 = biasCorrection ? 1 - Math.Pow(b1, t) : 1;
        var bc2 = biasCorrection ? 1 - Math.Pow(b2, t) : 1;
        for (var i = 0; i < p.Length; i++)
        {
            var gi = adamW ? g[i] : g[i] + wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            var update = m[i] / bc1 / (Math.Sqrt(v[i] / bc2) + eps);
            if (adamW) update += wd * p[i];
            p[i] -= lr * update;
        }
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public void MatchesHandWrittenReferenceLoop(bool biasCorrection, bool adamW)
    {
        const int n = 10;
        var rng = new Random(5);
        var p = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        double[] m = new double[n], v = new double[n];
        var param = new Parameter(tensor(p.ToArray(), ScalarType.Float64));
        using var opt = new FusedAdam(new[] { param }, lr: 3e-3, biasCorrection: biasCorrection, beta1: 0.9, beta2: 0.99,
            eps: 1e-8, adamWMode: adamW, weightDecay: 0.01);
        for (var t = 1; t <= 50; t++)
        {
            var g = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
            param.grad = tensor(g, ScalarType.Float64);
            opt.step();
            ReferenceStep(p, g, m, v, t, 3e-3, 0.9, 0.99, 1e-8, 0.01, biasCorrection, adamW);
        }
        var got = param.data<double>().ToArray();
        for (var i = 0; i < n; i++) Assert.Equal(p[i], got[i], 1e-12);
        var gotM = opt.ExpAvg(param).data<double>().ToArray();
        for (var i = 0; i < n; i++) Assert.Equal(m[i], gotM[i], 1e-12);
    }

    [Fact]
    public void BiasCorrectionFalseGivesSmallFirstSteps()
    {
        // Step 1 with a gradient of 1 and no bias correction: m = 0.1, v = 0.001, update = 0.1 / (sqrt(0.001) + eps)
        // = 3.1622766 (vs 1.0 with correction), so p = 1 - 0.01 * 3.1622766 = 0.968377.
        var p = new Parameter(ones(1));
        using var opt = new FusedAdam(new[] { p }, lr: 0.01, biasCorrection: false, beta1: 0.9, beta2: 0.999, eps: 0);
        p.grad = ones(1);
        opt.step();
        Assert.Equal(0.968377, p.item<float>(), 5);
    }

    [Fact]
    public void AmsgradIsRejectedWithClearError()
    {
        var p = new Parameter(ones(2));
        var e = Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { p }, amsgrad: true));
        Assert.Contains("AMSGrad", e.Message);
        Assert.Contains("amsgrad", e.Message);
    }

    [Fact]
    public void InvalidHyperParametersAreRejected()
    {
        var p = new Parameter(ones(2));
        Assert.Contains("betas[1]", Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { p }, beta2: 1.0)).Message);
        Assert.Contains("lr", Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { p }, lr: -1)).Message);
        Assert.Contains("weight_decay", Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { p }, weightDecay: -0.1)).Message);
    }

    [Fact]
    public void ParametersWithoutGradientsAreSkipped()
    {
        var p = new Parameter(ones(3));
        var q = new Parameter(ones(3));
        using var opt = new FusedAdam(new[] { p, q }, lr: 0.1);
        p.grad = ones(3);
        opt.step();
        Assert.Equal(1, opt.StepCount(p));
        Assert.Equal(0, opt.StepCount(q));
        Assert.Equal(1f, q.min().item<float>());
        Assert.True(p.max().item<float>() < 1f);
    }

    [Fact]
    public void ParamGroupLearningRateAndWeightDecayAreHonoured()
    {
        var p = new Parameter(ones(4));
        var q = new Parameter(ones(4));
        var groups = new[]
        {
            new FusedAdam.ParamGroup(new[] { p }),
            new FusedAdam.ParamGroup(new[] { q }, new FusedAdam.Options { LearningRate = 0, weight_decay = 0 }),
        };
        using var opt = new FusedAdam(groups, lr: 0.1, weightDecay: 0.1);
        Assert.Equal(new[] { 0.1, 0.0 }, opt.ParamGroups.Select(g => g.LearningRate).ToArray());
        p.grad = zeros(4);
        q.grad = ones(4);
        opt.step();
        // p: zero gradient, decoupled decay only: 1 - 0.1 * 0.1 * 1 = 0.99. q: lr 0, unchanged.
        Assert.Equal(0.99f, p[0].item<float>(), 6);
        Assert.Equal(1f, q[0].item<float>());
        // A scheduler-style LR change takes effect on the next step.
        opt.ParamGroups.First().LearningRate = 0;
        opt.step();
        Assert.Equal(0.99f, p[0].item<float>(), 6);
    }

    [Fact]
    public void Bf16ParametersKeepFp32MomentsAndTrackFp32Run()
    {
        var (a, b) = TwinParameters(4);
        var bf = a.Select(x => new Parameter(x.detach().to(ScalarType.BFloat16))).ToArray();
        using var ours = new FusedAdam(bf, lr: 1e-2);
        using var fp32 = new FusedAdam(b, lr: 1e-2);
        Assert.Equal(ScalarType.Float32, ours.ExpAvg(bf[0]).dtype);
        var gen = new Generator(14);
        for (var s = 0; s < 10; s++)
        {
            for (var i = 0; i < b.Length; i++)
            {
                var g = randn(b[i].shape, generator: gen);
                b[i].grad = g;
                bf[i].grad = g.to(ScalarType.BFloat16);
            }
            ours.step();
            fp32.step();
        }
        Assert.Equal(ScalarType.BFloat16, bf[0].dtype);
        var asFloat = bf.Select(x => new Parameter(x.detach().to(ScalarType.Float32))).ToArray();
        Assert.True(MaxRelativeDifference(asFloat, b) < 2e-2);
    }

    [Fact]
    public void InMemoryStateDictIsCopiedNotShared()
    {
        var (a, b) = TwinParameters(6);
        var source = new FusedAdam(a, lr: 1e-2);
        var gen = new Generator(16);
        for (var s = 0; s < 3; s++) { SetSameGrads(a, b, gen); source.step(); }
        using var target = new FusedAdam(b, lr: 1e-2);
        target.load_state_dict(source.state_dict());
        var expected = source.ExpAvg(a[1]).clone();
        source.Dispose(); // the target must not hold the source's tensors
        Assert.Equal(3, target.StepCount(b[1]));
        Assert.True(target.ExpAvg(b[1]).allclose(expected, rtol: 0, atol: 0));
        b[1].grad = ones_like(b[1]);
        target.step();
        Assert.Equal(4, target.StepCount(b[1]));
    }

    [Fact]
    public void MomentsOutliveTheDisposeScopeTheOptimizerWasBuiltIn()
    {
        var p = new Parameter(ones(3));
        FusedAdam opt;
        using (NewDisposeScope()) opt = new FusedAdam(new[] { p }, lr: 0.1);
        using (opt)
        {
            p.grad = ones(3);
            opt.step();
            Assert.Equal(0.1f, opt.ExpAvg(p)[0].item<float>(), 6); // (1 - 0.9) * 1
        }
    }

    [Fact]
    public void ZeroGradZeroesInPlace()
    {
        var p = new Parameter(ones(3));
        using var opt = new FusedAdam(new[] { p });
        p.grad = ones(3);
        var before = p.grad!;
        opt.zero_grad();
        Assert.Equal(0f, p.grad!.abs().sum().item<float>());
        Assert.Equal(0f, before.abs().sum().item<float>());
    }
}
