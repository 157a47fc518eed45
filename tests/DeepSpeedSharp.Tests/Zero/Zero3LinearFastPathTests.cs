using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Zero;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>
/// In one process (a group of one rank): ZeRO-3's Linear fast path gives bit-identical gradients to recomputing every
/// unit, recomputes nothing for Linear units, and leaves every partitioned parameter released after backward.
/// </summary>
public class Zero3LinearFastPathTests
{
    /// <summary>Linear (bias) → LayerNorm (a unit that is always recomputed) → GELU → Linear (no bias).</summary>
    private sealed class Net : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc;
        private readonly LayerNorm norm;
        private readonly Linear head;

        public Net() : base(nameof(Net))
        {
            fc = nn.Linear(8, 12);
            norm = nn.LayerNorm(12);
            head = nn.Linear(12, 6, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var h = nn.functional.gelu(norm.call(fc.call(x)));
            return head.call(h).MoveToOuterDisposeScope();
        }
    }

    private sealed record Result(float[][] MasterGrads, float[]?[] InputGrads, int FastUnits, int Recomputations, int Units);

    private static Result Train(bool recomputeAll, long[] shape, bool inputRequiresGrad, bool bf16, int steps = 2, bool keepGraph = false)
    {
        manual_seed(7);
        using var net = new Net();
        if (bf16) net.to(ScalarType.BFloat16);
        var dtype = bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
        var trainable = net.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        using var group = new SingleProcessGroup(0, TimeSpan.FromSeconds(5), new CommsLogger());
        // Without reuse every step releases after forward, so the backward nodes run; with the default limits the steps
        // after the first keep every unit gathered and run with autograd's own graph.
        var config = DeepSpeedConfig.FromJson($$"""
            { "train_micro_batch_size_per_gpu": 1, "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0 {{(keepGraph ? "" : ", \"stage3_max_reuse_distance\": 0")}} } }
            """);
        using var strategy = new Zero3Strategy(net, trainable, ps => optim.AdamW(ps, lr: 1e-2, weight_decay: 0.01), group, config,
            new Dictionary<string, ZeroInit.PrePartitioned>(), recomputeAll: recomputeAll);
        var gen = new Generator(11);
        var grads = new List<float[]>();
        var inputGrads = new List<float[]?>();
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            strategy.ZeroGrad();
            var x = randn(shape, generator: gen).to(dtype).requires_grad_(inputRequiresGrad);
            var weights = randn(shape[..^1].Append(6L).ToArray(), generator: gen).to(dtype);
            var loss = (net.call(x) * weights).sum();
            loss.backward();
            strategy.AfterBackward(isBoundary: true);

            // Memory is really released: no full parameter values or full gradients survive the backward pass.
            Assert.All(strategy.Parameters, p => Assert.False(p.IsGathered, $"{p.Name} is still gathered after backward"));
            Assert.All(strategy.Parameters, p => Assert.True(p.Param.grad is null, $"{p.Name} still holds a full gradient"));

            grads.Add(strategy.Optimizer.parameters().Single().grad!.data<float>().ToArray());
            inputGrads.Add(inputRequiresGrad ? x.grad!.to(ScalarType.Float32).data<float>().ToArray() : null);
            strategy.Step(clip: 0, lossScale: 1, skipOnOverflow: false);
        }
        return new Result(grads.ToArray(), inputGrads.ToArray(), strategy.Units.Count(u => u.HasLinearFastPath),
            strategy.Units.Sum(u => u.Recomputations), strategy.Units.Count);
    }

    [Theory]
    [InlineData(new long[] { 3, 5, 8 }, true, false)]
    [InlineData(new long[] { 3, 5, 8 }, false, false)]
    [InlineData(new long[] { 7, 8 }, true, false)]
    [InlineData(new long[] { 2, 2, 3, 8 }, true, false)]
    [InlineData(new long[] { 3, 5, 8 }, true, true)]
    public void GradientsAreBitIdenticalToRecomputingEveryUnit(long[] shape, bool inputRequiresGrad, bool bf16)
    {
        var recompute = Train(recomputeAll: true, shape, inputRequiresGrad, bf16);
        var fast = Train(recomputeAll: false, shape, inputRequiresGrad, bf16);

        Assert.Equal(3, fast.Units);
        Assert.Equal(2, fast.FastUnits);
        Assert.Equal(0, recompute.FastUnits);
        Assert.Equal(3 * 2, recompute.Recomputations); // every unit, every step
        Assert.Equal(1 * 2, fast.Recomputations);      // only the LayerNorm
        for (int step = 0; step < recompute.MasterGrads.Length; step++)
        {
            Assert.Contains(recompute.MasterGrads[step], g => g != 0);
            Assert.Equal(recompute.MasterGrads[step], fast.MasterGrads[step]);
            Assert.Equal(recompute.InputGrads[step], fast.InputGrads[step]);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KeepingAutogradsGraphGivesTheSameGradientsWithoutRecomputing(bool bf16)
    {
        long[] shape = [3, 5, 8];
        var nodes = Train(recomputeAll: false, shape, inputRequiresGrad: true, bf16, steps: 3);
        var graph = Train(recomputeAll: false, shape, inputRequiresGrad: true, bf16, steps: 3, keepGraph: true);
        Assert.Equal(1 * 3, nodes.Recomputations); // the LayerNorm, every step
        Assert.Equal(1, graph.Recomputations);     // the LayerNorm in the first step only (which records the trace)
        for (int step = 0; step < 3; step++)
        {
            Assert.Equal(nodes.MasterGrads[step], graph.MasterGrads[step]);
            Assert.Equal(nodes.InputGrads[step], graph.InputGrads[step]);
        }
    }

    [Fact]
    public void NonContiguousInputFallsBackToRecomputationWithTheSameGradients()
    {
        // A transposed input is not one contiguous matrix product in libtorch's linear: the unit is recomputed instead.
        var results = new[] { true, false }.Select(all =>
        {
            manual_seed(3);
            using var fc = nn.Linear(4, 3);
            var trainable = fc.named_parameters().Select(p => (p.name, p.parameter)).ToList();
            using var group = new SingleProcessGroup(0, TimeSpan.FromSeconds(5), new CommsLogger());
            var config = DeepSpeedConfig.FromJson("""{ "train_micro_batch_size_per_gpu": 1, "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0 } }""");
            using var strategy = new Zero3Strategy(fc, trainable, ps => optim.SGD(ps, 0.1), group, config,
                new Dictionary<string, ZeroInit.PrePartitioned>(), recomputeAll: all);
            using var scope = NewDisposeScope();
            var x = randn(new long[] { 4, 5 }, generator: new Generator(5)).t().requires_grad_(true);
            fc.call(x).square().sum().backward();
            strategy.AfterBackward(isBoundary: true);
            return (Grad: strategy.Optimizer.parameters().Single().grad!.data<float>().ToArray(), InputGrad: x.grad!.data<float>().ToArray(),
                Fast: strategy.Units.Single().HasLinearFastPath, Recomputed: strategy.Units.Single().Recomputations);
        }).ToArray();
        Assert.False(results[0].Fast);
        Assert.True(results[1].Fast);
        Assert.Equal(1, results[1].Recomputed);
        Assert.Equal(results[0].Grad, results[1].Grad);
        Assert.Equal(results[0].InputGrad, results[1].InputGrad);
    }
}
