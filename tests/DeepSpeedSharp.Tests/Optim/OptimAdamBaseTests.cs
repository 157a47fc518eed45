using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Optim.CpuAdam;
using TorchSharp.Modules;
using Xunit;
using static DeepSpeedSharp.Tests.Optim.AdamTwins;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Optim;

/// <summary>What <see cref="FusedAdam"/> and <see cref="DeepSpeedCpuAdam"/> share through <see cref="AdamOptimizerBase"/>:
/// one state layout, one set of group checks, one validation.</summary>
public class OptimAdamBaseTests
{
    private static AdamOptimizerBase Make(string kind, Parameter[] ps, double lr) => kind switch
    {
        "fused" => new FusedAdam(ps, lr: lr, weightDecay: 0.01),
        "cpu" => new DeepSpeedCpuAdam(ps, lr: lr, weightDecay: 0.01),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "fused or cpu"),
    };

    [Theory]
    [InlineData("fused")]
    [InlineData("cpu")]
    public void BinaryStateDictRoundTripContinuesIdentically(string kind)
    {
        var (a, b) = TwinParameters(5, new[] { new long[] { 7, 5 }, new long[] { 13 }, new long[] { 40_001 } });
        using var first = Make(kind, a, 1e-2);
        var gen = new Generator(15);
        for (var s = 0; s < 5; s++) { SetSameGrads(a, b, gen); first.step(); }
        for (var i = 0; i < a.Length; i++) using (no_grad()) b[i].copy_(a[i]);

        using var stream = new MemoryStream();
        first.save_state_dict(new BinaryWriter(stream));
        stream.Position = 0;
        using var second = Make(kind, b, 0.5);
        second.load_state_dict(new BinaryReader(stream));
        Assert.Equal(1e-2, second.ParamGroups.Single().LearningRate);
        Assert.Equal(5, second.StepCount(b[0]));

        for (var s = 0; s < 5; s++) { SetSameGrads(a, b, gen); first.step(); second.step(); }
        Assert.Equal(0.0, MaxRelativeDifference(a, b));
    }

    [Fact]
    public void FusedAdamStateLoadsIntoDeepSpeedCpuAdamUnchanged()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var p = new Parameter(randn(5, 3));
        var q = new Parameter(p.detach().clone());
        using var fused = new FusedAdam(new[] { p }, lr: 0.01, weightDecay: 0.1);
        for (var i = 0; i < 3; i++)
        {
            p.grad = randn(5, 3);
            fused.step();
        }
        using var cpu = new DeepSpeedCpuAdam(new[] { q }, lr: 0.5, threads: 1);
        // The in-memory form: TorchSharp's binary form records the optimizer's type name and refuses a different one.
        cpu.load_state_dict(fused.state_dict());

        Assert.True(fused.ExpAvg(p).abs().sum().item<float>() > 0);
        Assert.Equal(3, cpu.StepCount(q));
        Assert.True(cpu.ExpAvg(q).equal(fused.ExpAvg(p)).all().item<bool>());
        Assert.True(cpu.ExpAvgSq(q).equal(fused.ExpAvgSq(p)).all().item<bool>());
        Assert.Equal(0.01, cpu.ParamGroups.Single().LearningRate, 12);
        Assert.NotSame(cpu.ExpAvg(q), fused.ExpAvg(p));
    }

    [Fact]
    public void BothRejectAParameterListedTwiceInOneGroup()
    {
        using var scope = NewDisposeScope();
        var p = new Parameter(zeros(3));
        Assert.Contains("FusedAdam: some parameters appear in more than one",
            Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { p, p })).Message);
        Assert.Contains("DeepSpeedCpuAdam: some parameters appear in more than one",
            Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(new[] { p, p })).Message);
    }

    [Fact]
    public void ErrorsNameTheOptimizerGroupAndParameter()
    {
        using var scope = NewDisposeScope();
        var ok = new Parameter(zeros(3));
        var ints = new Parameter(zeros(3, ScalarType.Int32), requires_grad: false);
        var e = Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { ok, ints }));
        Assert.Contains("FusedAdam param group 0, parameter 1", e.Message);
        Assert.Contains("Int32", e.Message);

        Assert.Contains("FusedAdam defaults: lr must be a finite number",
            Assert.Throws<ArgumentException>(() => new FusedAdam(new[] { ok }, lr: double.PositiveInfinity)).Message);
        var groups = new[] { new AdamOptimizerBase.ParamGroup(new[] { ok }, new AdamOptimizerBase.Options { eps = -1 }) };
        Assert.Contains("DeepSpeedCpuAdam param group 0: eps must be",
            Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(groups)).Message);

        using var opt = new FusedAdam(new[] { ok });
        Assert.Contains("FusedAdam: the parameter is not managed",
            Assert.Throws<ArgumentException>(() => opt.StepCount(new Parameter(zeros(1)))).Message);
        Assert.Contains("DeepSpeedCpuAdam does not support the AMSGrad",
            Assert.Throws<ArgumentException>(() => new DeepSpeedCpuAdam(new[] { ok }, amsgrad: true)).Message);
    }
}
