using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Optim.CpuAdam;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Optim;

/// <summary>
/// <see cref="OptimizerCarryOver"/>: an optimizer rebuilt over one flat parameter per group steps those flat
/// parameters exactly as the user's optimizer steps the group's own parameters (same type, same per-group
/// hyper-parameters), and one that cannot be rebuilt is refused in one line that names it and the factory alternative.
/// </summary>
public class OptimizerCarryOverTests
{
    private static Parameter P(long n, int seed)
    {
        var g = new Generator((ulong)seed);
        return new Parameter(randn(new[] { n }, generator: g));
    }

    public static TheoryData<string> Kinds => new() { "adam", "adamw", "sgd", "sgd-nesterov", "rmsprop", "adagrad", "adamax", "nadam", "radam", "rprop", "adadelta", "fused", "cpuadam" };

    private static optim.Optimizer Build(string kind, Parameter[] a, Parameter[] b) => kind switch
    {
        "adam" => optim.Adam(new[] { new Adam.ParamGroup(a, new Adam.Options { LearningRate = 0.01, weight_decay = 0.1, amsgrad = true }),
            new Adam.ParamGroup(b, new Adam.Options { LearningRate = 0.003, beta1 = 0.8 }) }),
        "adamw" => optim.AdamW(new[] { new AdamW.ParamGroup(a, new AdamW.Options { LearningRate = 0.01, weight_decay = 0.1 }),
            new AdamW.ParamGroup(b, new AdamW.Options { LearningRate = 0.003, weight_decay = 0.0, eps = 1e-6 }) }, beta2: 0.95),
        "sgd" => optim.SGD(new[] { new SGD.ParamGroup(a, new SGD.Options { LearningRate = 0.1, momentum = 0.9, weight_decay = 0.01 }),
            new SGD.ParamGroup(b, new SGD.Options { LearningRate = 0.05, momentum = 0.5, dampening = 0.1 }) }, learningRate: 0.1),
        "sgd-nesterov" => optim.SGD(new[] { new SGD.ParamGroup(a, new SGD.Options { LearningRate = 0.1, momentum = 0.9, nesterov = true }),
            new SGD.ParamGroup(b, new SGD.Options { LearningRate = 0.05 }) }, learningRate: 0.1),
        "rmsprop" => optim.RMSProp(new[] { new RMSProp.ParamGroup(a, new RMSProp.Options { LearningRate = 0.01, momentum = 0.5, centered = true }),
            new RMSProp.ParamGroup(b, new RMSProp.Options { LearningRate = 0.002 }) }),
        "adagrad" => optim.Adagrad(new[] { new Adagrad.ParamGroup(a, new Adagrad.Options { LearningRate = 0.05, lr_decay = 0.01 }),
            new Adagrad.ParamGroup(b, new Adagrad.Options { LearningRate = 0.01 }) }),
        "adamax" => optim.Adamax(new[] { new Adamax.ParamGroup(a, new Adamax.Options { LearningRate = 0.01 }),
            new Adamax.ParamGroup(b, new Adamax.Options { LearningRate = 0.002, weight_decay = 0.1 }) }),
        "nadam" => optim.NAdam(new[] { new NAdam.ParamGroup(a, new NAdam.Options { LearningRate = 0.01 }),
            new NAdam.ParamGroup(b, new NAdam.Options { LearningRate = 0.002, momentum_decay = 0.01 }) }),
        "radam" => optim.RAdam(new[] { new RAdam.ParamGroup(a, new RAdam.Options { LearningRate = 0.01 }),
            new RAdam.ParamGroup(b, new RAdam.Options { LearningRate = 0.002, weight_decay = 0.1 }) }),
        "rprop" => optim.Rprop(new[] { new Rprop.ParamGroup(a, new Rprop.Options { LearningRate = 0.01 }),
            new Rprop.ParamGroup(b, new Rprop.Options { LearningRate = 0.002, etaminus = 0.4 }) }),
        "adadelta" => optim.Adadelta(new[] { new Adadelta.ParamGroup(a, new Adadelta.Options { LearningRate = 1.0, rho = 0.8 }),
            new Adadelta.ParamGroup(b, new Adadelta.Options { LearningRate = 0.5, weight_decay = 0.1 }) }),
        "fused" => new FusedAdam(new[] { new AdamOptimizerBase.ParamGroup(a, new AdamOptimizerBase.Options { LearningRate = 0.01, weight_decay = 0.1 }),
            new AdamOptimizerBase.ParamGroup(b, new AdamOptimizerBase.Options { LearningRate = 0.003, bias_correction = false }) }, adamWMode: false, beta2: 0.95),
        "cpuadam" => new DeepSpeedCpuAdam(new[] { new AdamOptimizerBase.ParamGroup(a, new AdamOptimizerBase.Options { LearningRate = 0.01, weight_decay = 0.1 }),
            new AdamOptimizerBase.ParamGroup(b, new AdamOptimizerBase.Options { LearningRate = 0.003 }) }, eps: 1e-7, threads: 1),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TheRebuiltOptimizerStepsFlatGroupsAsTheClientStepsItsParameters(string kind)
    {
        using var scope = NewDisposeScope();
        Parameter[] a = { P(5, 1), P(7, 2) }, b = { P(3, 3) };
        using var client = Build(kind, a, b);
        // One flat parameter per group, as a ZeRO partition holds them.
        using var flatA = new Parameter(cat(a.Select(p => p.detach().reshape(-1)).ToList(), 0));
        using var flatB = new Parameter(cat(b.Select(p => p.detach().reshape(-1)).ToList(), 0));
        using var carried = OptimizerCarryOver.Rebuild(client, new[] { flatA, flatB });
        Assert.Equal(client.GetType(), carried.GetType());
        Assert.Equal(client.ParamGroups.Select(g => g.LearningRate), carried.ParamGroups.Select(g => g.LearningRate));
        for (int step = 0; step < 4; step++)
        {
            var g = new Generator((ulong)(100 + step));
            foreach (var p in a.Concat(b)) p.grad = randn(p.shape, generator: g);
            flatA.grad = cat(a.Select(p => p.grad!.reshape(-1)).ToList(), 0);
            flatB.grad = cat(b.Select(p => p.grad!.reshape(-1)).ToList(), 0);
            client.step();
            carried.step();
        }
        var expectedA = cat(a.Select(p => p.detach().reshape(-1)).ToList(), 0);
        var expectedB = cat(b.Select(p => p.detach().reshape(-1)).ToList(), 0);
        Assert.Equal(0f, (expectedA - flatA).abs().max().item<float>());
        Assert.Equal(0f, (expectedB - flatB).abs().max().item<float>());
        Assert.NotEqual(0f, (a[0].detach() - P(5, 1)).abs().max().item<float>()); // the steps moved the weights
    }

    [Fact]
    public void AnOptimizerThatCannotBeRebuiltIsRefusedInOneLineNamingItAndTheFactory()
    {
        using var p = P(4, 1);
        using var lbfgs = optim.LBFGS(new[] { p });
        var e = Assert.Throws<ArgumentException>(() => OptimizerCarryOver.Rebuild(lbfgs, new[] { p }));
        Assert.Contains("LBFGS", e.Message);
        Assert.Contains("optimizerFactory", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
