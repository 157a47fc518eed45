using DeepSpeedSharp.Optim.CpuAdam;
using DeepSpeedSharp.Schedulers;
using TorchSharp;
using TorchSharp.Modules;
using static DeepSpeedSharp.Tests.Optim.AdamTwins;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.CpuAdam;

/// <summary><see cref="DeepSpeedCpuAdam"/> against TorchSharp's Adam/AdamW, its low-precision copies, threads,
/// scheduling, state and errors.</summary>
public class CpuAdamOptimizerTests
{
    private static readonly long[][] Shapes = { new long[] { 7, 5 }, new long[] { 13 }, new long[] { 2, 3, 4 }, new long[] { 40_001 } };

    [Fact]
    public void AdamWModeMatchesTorchSharpAdamWAfter100Steps()
    {
        var (a, b) = TwinParameters(1, Shapes);
        var before = a[3].detach().clone();
        using var ours = new DeepSpeedCpuAdam(a, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, threads: 2);
        using var reference = new AdamW(b, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1);
        RunSideBySide(ours, reference, a, b, 11);
        var diff = MaxRelativeDifference(a, b);
        Assert.True(diff < 1e-6, $"max relative difference {diff}");
        Assert.True((a[3] - before).abs().max().item<float>() > 0.1f); // about lr per step: really moved
        Assert.Equal(100, ours.StepCount(a[0]));
    }

    [Fact]
    public void ChunkedStepsAreBitIdenticalToOneCall()
    {
        // Partitions over 2 GiB are stepped in chunks (spans address at most 2 GiB); a chunk of 1,000 elements over
        // 40,001 must give exactly what one call gives, for the master and its bf16 copy.
        var (a, b) = TwinParameters(3, [new long[] { 40_001 }]);
        using var whole = new DeepSpeedCpuAdam(a, lr: 1e-2, weightDecay: 0.1, threads: 2);
        using var chunked = new DeepSpeedCpuAdam(b, lr: 1e-2, weightDecay: 0.1, threads: 2) { ChunkElements = 1_000 };
        using var copyA = zeros(40_001, ScalarType.BFloat16);
        using var copyB = zeros(40_001, ScalarType.BFloat16);
        for (int step = 0; step < 5; step++)
        {
            using var g = randn(40_001, generator: new Generator((ulong)(50 + step)));
            a[0].grad = g.clone();
            b[0].grad = g.clone();
            whole.Step(a[0], copyA);
            chunked.Step(b[0], copyB);
        }
        Assert.True(a[0].eq(b[0]).all().item<bool>(), "chunked master differs");
        Assert.True(copyA.eq(copyB).all().item<bool>(), "chunked bf16 copy differs");
        Assert.True(whole.ExpAvgSq(a[0]).eq(chunked.ExpAvgSq(b[0])).all().item<bool>(), "chunked moments differ");
        Assert.True(copyA.to(ScalarType.Float32).eq(a[0].detach().to(ScalarType.BFloat16).to(ScalarType.Float32)).all().item<bool>());
    }

    [Fact]
    public void L2ModeMatchesTorchSharpAdamAfter100Steps()
    {
        var (a, b) = TwinParameters(2, Shapes);
        using var ours = new DeepSpeedCpuAdam(a, lr: 1e-2, beta1: 0.8, beta2: 0.999, eps: 1e-6, weightDecay: 0.05, adamWMode: false);
        using var reference = new Adam(b, lr: 1e-2, beta1: 0.8, beta2: 0.999, eps: 1e-6, weight_decay: 0.05);
        RunSideBySide(ours, reference, a, b, 12);
        var diff = MaxRelativeDifference(a, b);
        Assert.True(diff < 1e-6, $"max relative difference {diff}");
    }

    [Fact]
    public void BiasCorrectionOffDiffersFromTorchAdamW()
    {
        // Guards the comparison above: the same run without bias correction is far from torch's.
        var (a, b) = TwinParameters(3, Shapes);
        using var ours = new DeepSpeedCpuAdam(a, lr: 1e-2, biasCorrection: false);
        using var reference = new AdamW(b, lr: 1e-2, beta1: 0.9, beta2: 0.999, weight_decay: 0);
        RunSideBySide(ours, reference, a, b, 13, steps: 10);
        Assert.True(MaxRelativeDifference(a, b) > 1e-3);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void LowPrecisionCopyEqualsParamToDtypeBitForBit(ScalarType dtype)
    {
        var (a, _) = TwinParameters(4, Shapes);
        using var opt = new DeepSpeedCpuAdam(a, lr: 1e-2, weightDecay: 0.01, threads: 2);
        var copies = a.Select(p => zeros(p.shape, dtype)).ToArray();
        var gen = new Generator(14);
        for (var s = 0; s < 3; s++)
        {
            foreach (var p in a) p.grad = randn(p.shape, generator: gen);
            if (s == 0) for (var i = 0; i < a.Length; i++) opt.Step(a[i], copies[i]);
            else opt.StepWithCopies(new[] { copies.Cast<Tensor?>().ToArray() });
        }
        for (var i = 0; i < a.Length; i++)
        {
            using var expected = a[i].detach().to(dtype);
            Assert.Equal(CpuAdamTestData.Bits16(expected), CpuAdamTestData.Bits16(copies[i]));
            Assert.Equal(3, opt.StepCount(a[i]));
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        var (a, b) = TwinParameters(5, Shapes);
        using var one = new DeepSpeedCpuAdam(a, lr: 1e-2, weightDecay: 0.1, threads: 1);
        using var two = new DeepSpeedCpuAdam(b, lr: 1e-2, weightDecay: 0.1, threads: 2);
        Assert.Equal(2, two.Threads);
        RunSideBySide(one, two, a, b, 15, steps: 5);
        Assert.Equal(0.0, MaxRelativeDifference(a, b));
    }

    [Fact]
    public void WarmupLRSchedulerDrivesTheLearningRate()
    {
        var p = new Parameter(ones(4));
        using var opt = new DeepSpeedCpuAdam(new[] { p }, lr: 0.1, weightDecay: 0.5);
        var schedule = new WarmupLR(opt, warmupMinLr: 0, warmupMaxLr: 0.1, warmupNumSteps: 10, warmupType: "linear");
        Assert.Equal(0.0, opt.ParamGroups.Single().LearningRate);
        p.grad = ones(4);
        opt.step(); // lr 0: nothing moves, not even by weight decay
        Assert.Equal(1f, p.min().item<float>());
        schedule.Step();
        schedule.Step(); // linear warm-up: 0 at iteration 0, 0.01 at iteration 1
        var lr = opt.ParamGroups.Single().LearningRate;
        Assert.True(lr > 0 && lr < 0.1, $"lr after one scheduler step: {lr}");
        opt.step();
        // Step 2 with a constant gradient of 1: m̂ = v̂ = 1, so p = 1·(1 − lr·wd) − lr·1/(1 + eps).
        Assert.Equal((float)(1 * (1 - lr * 0.5) - lr), p[0].item<float>(), 6);
    }

    [Fact]
    public void ParametersThatAreViewsOfAFlatBufferAreUpdatedInPlace()
    {
        using var flat = zeros(30);
        using var flatGrad = ones(30);
        var p = new Parameter(zeros(2, 5));
        using (no_grad())
        {
            p.set_(flat.narrow(0, 10, 10).view(2, 5));
            p.grad = flatGrad.narrow(0, 10, 10).view(2, 5);
        }
        using var opt = new DeepSpeedCpuAdam(new[] { p }, lr: 0.1);
        opt.step();
        var values = CpuAdamTestData.Floats(flat);
        Assert.All(values.Take(10).Concat(values.Skip(20)), v => Assert.Equal(0f, v));
        Assert.All(values.Skip(10).Take(10), v => Assert.Equal(-0.1f, v, 6));
    }

    [Fact]
    public void ParametersWithoutGradientsAreSkipped()
    {
        var p = new Parameter(ones(3));
        var q = new Parameter(ones(3));
        using var opt = new DeepSpeedCpuAdam(new[] { p, q }, lr: 0.1);
        p.grad = ones(3);
        opt.step();
        Assert.Equal(1, opt.StepCount(p));
        Assert.Equal(0, opt.StepCount(q));
        Assert.Equal(1f, q.min().item<float>());
    }

    [Fact]
    public void DefaultsAreDeepSpeedCpuAdams()
    {
        var p = new Parameter(ones(3));
        using var opt = new DeepSpeedCpuAdam(new[] { p });
        var o = ((DeepSpeedCpuAdam.ParamGroup)opt.ParamGroups.Single()).Options;
        Assert.Equal((1e-3, 0.9, 0.999, 1e-8, 0.0, true), (o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value, o.bias_correction!.Value));
        Assert.True(opt.AdamWMode);
        Assert.True(opt.Fp32OptimizerStates);
        Assert.Equal(Environment.ProcessorCount, opt.Threads);
        Assert.Equal(ScalarType.Float32, opt.ExpAvg(p).dtype);
    }

    [Fact]
    public void BadInputIsRejectedWithClearErrors()
    {
        var p = new Parameter(ones(3));
        Assert.Contains("AMSGrad", Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(new[] { p }, amsgrad: true)).Message);
        Assert.Contains("betas[0]", Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(new[] { p }, beta1: 1.5)).Message);
        Assert.Contains("weight_decay", Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(new[] { p }, weightDecay: -1)).Message);
        var bf16 = new Parameter(ones(3, ScalarType.BFloat16));
        var e = Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(new[] { p, bf16 }));
        Assert.Contains("parameter 1", e.Message);
        Assert.Contains("BFloat16", e.Message);

        using var opt = new DeepSpeedCpuAdam(new[] { p });
        p.grad = ones(3);
        Assert.Contains("4 elements", Assert.Throws<ArgumentException>(() => opt.Step(p, zeros(4, ScalarType.BFloat16))).Message);
        Assert.Contains("BFloat16 or Float16", Assert.Throws<ArgumentException>(() => opt.Step(p, zeros(3))).Message);
        Assert.Contains("not managed", Assert.Throws<ArgumentException>(() => opt.Step(new Parameter(ones(3)), null)).Message);
        Assert.Contains("1 parameters but 2", Assert.Throws<ArgumentException>(() =>
            opt.StepWithCopies(new[] { new Tensor?[] { null, null } })).Message);
    }
}
