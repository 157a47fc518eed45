using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Engine;

/// <summary>Issue 34: without an optimizer, the errors say how to give one that works (not "pass one", which ZeRO refuses).</summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public class OptimizerMessageTests
{
    private const string Fix = "add an \"optimizer\" section to the config (e.g. {\"type\": \"AdamW\", \"params\": {\"lr\": 0.0001}}) " +
                               "or pass optimizerFactory: ps => new AdamW(ps, ...) to DeepSpeed.Initialize";

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
