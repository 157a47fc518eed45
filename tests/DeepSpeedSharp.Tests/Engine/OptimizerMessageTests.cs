using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Engine;

/// <summary>Issue 34: without an optimizer, the errors say how to give one that works (not "pass one", which ZeRO refuses).</summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public class OptimizerMessageTests
{
    private const string Fix = "add an \"optimizer\" section to the config (e.g. {\"type\": \"AdamW\", \"params\": {\"lr\": 0.0001}}) " +
                               "or pass optimizer: optim.AdamW(model.parameters(), ...) to DeepSpeed.Initialize";

    [Fact]
    public void TrainingWithoutAnOptimizerSaysHowToGiveOne()
    {
        var engine = DeepSpeed.Initialize(nn.Linear(4, 2), config: """{"train_batch_size": 2, "zero_optimization": {"stage": 1}}""").Engine;
        using var scope = NewDisposeScope();
        var loss = engine.Forward(ones(2, 4)).sum();
        engine.Backward(loss);
        Assert.Equal($"training needs an optimizer: {Fix}", Assert.Throws<InvalidOperationException>(() => engine.Step()).Message);
    }

    [Fact]
    public void ASchedulerWithoutAnOptimizerSaysHowToGiveOne()
    {
        var e = Assert.Throws<DeepSpeedSharp.Config.DeepSpeedConfigException>(() => DeepSpeed.Initialize(nn.Linear(4, 2),
            config: """{"train_batch_size": 2, "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 2}}}"""));
        Assert.Contains($"a scheduler was given but there is no optimizer for it to drive: {Fix}", e.Message);
    }
}

/// <summary>Issue 34: a client optimizer through <c>DeepSpeed.Initialize</c> in one process (the multi-rank proof is <see cref="ClientOptimizerTests"/>).</summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public class ClientOptimizerInitializeTests
{
    private static (nn.Module Model, optim.Optimizer Client) ModelWithTwoGroups()
    {
        var model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2));
        var named = model.named_parameters().ToList();
        var client = optim.AdamW(new[]
        {
            new TorchSharp.Modules.AdamW.ParamGroup(named.Where(p => p.parameter.dim() >= 2).Select(p => p.parameter),
                new TorchSharp.Modules.AdamW.Options { LearningRate = 0.01, weight_decay = 0.1 }),
            new TorchSharp.Modules.AdamW.ParamGroup(named.Where(p => p.parameter.dim() < 2).Select(p => p.parameter),
                new TorchSharp.Modules.AdamW.Options { LearningRate = 0.002, weight_decay = 0.0 }),
        });
        return (model, client);
    }

    [Fact]
    public void Bf16MastersTakeTheClientsGroupsThoughTheCastReplacesTheParameters()
    {
        var (model, client) = ModelWithTwoGroups();
        var (engine, optimizer, _, _) = DeepSpeed.Initialize(model, optimizer: client,
            config: """{"train_batch_size": 2, "bf16": {"enabled": true}, "zero_optimization": {"stage": 1}}""");
        var adamw = Assert.IsType<TorchSharp.Modules.AdamW>(optimizer);
        Assert.NotSame(client, adamw);
        Assert.Equal(new[] { 0.01, 0.002 }, engine.GetLr());
        // Group 0 holds the two weight matrices (4·8 + 8·2 elements), group 1 the biases and LayerNorm (8 + 8 + 8 + 2).
        Assert.Equal(new long[] { 48, 26 }, adamw.ParamGroups.Cast<TorchSharp.Modules.ParamGroup>().Select(g => g.Parameters.Sum(p => p.numel())).ToArray());
        for (int i = 0; i < 3; i++)
        {
            using var scope = NewDisposeScope();
            engine.Backward(engine.Forward(ones(2, 4).to(ScalarType.BFloat16)).to(ScalarType.Float32).square().mean());
            engine.Step();
        }
        Assert.Equal(3, engine.GlobalSteps);
    }

    [Fact]
    public void ATrainableParameterInNoGroupIsNamed()
    {
        var model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2));
        var client = optim.AdamW(model.named_parameters().Where(p => p.name.StartsWith("0.")).Select(p => p.parameter));
        var e = Assert.Throws<ArgumentException>(() => DeepSpeed.Initialize(model, optimizer: client,
            config: """{"train_batch_size": 2, "zero_optimization": {"stage": 2}}"""));
        Assert.StartsWith("parameter '1.weight' (and 1 more) is trainable but in none of the param groups", e.Message);
    }

    [Fact]
    public void AnOptimizerThatCannotBeCarriedOverNamesTheFactory()
    {
        var model = nn.Linear(4, 2);
        var e = Assert.Throws<ArgumentException>(() => DeepSpeed.Initialize(model, optimizer: optim.LBFGS(model.parameters()),
            config: """{"train_batch_size": 2, "zero_optimization": {"stage": 1}, "zero_allow_untested_optimizer": true}"""));
        Assert.Contains("(LBFGS) cannot be carried over", e.Message);
        Assert.Contains("optimizerFactory: ps => new LBFGS(ps, ...)", e.Message);
    }
}
