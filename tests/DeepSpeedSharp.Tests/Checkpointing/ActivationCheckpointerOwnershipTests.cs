using DeepSpeedSharp.Tests.Infrastructure;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>
/// The engine owns the activation-checkpointing state: it adopts what DeepSpeed-style code configured through
/// <c>DeepSpeed.Checkpointing</c> before <c>Initialize</c>, model code calling the static API reaches the engine's
/// instance, and disposing the engine leaves the next one a fresh state. (Alone: the static API is process-wide.)
/// </summary>
[Collection(GlobalRngCollection.Name)]
public class ActivationCheckpointerOwnershipTests
{
    [Fact]
    public void TheEngineAdoptsTheStateConfiguredBeforeInitializeAndLeavesAFreshOneWhenDisposed()
    {
        DeepSpeed.Checkpointing.Configure(null, numCheckpoints: 3);
        var configured = DeepSpeed.Checkpointing.Current;
        var lin = nn.Linear(4, 4);
        var engine = DeepSpeed.Initialize(lin, config: """{"train_batch_size": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}}""").Engine;
        try
        {
            Assert.Same(configured, engine.ActivationCheckpointing);
            Assert.Equal(3, engine.ActivationCheckpointing.Settings.NumberCheckpoints);
            Assert.False(engine.ActivationCheckpointing.WasUsed);
            using (var scope = NewDisposeScope())
            {
                var loss = DeepSpeed.Checkpointing.Checkpoint(lin.call, randn(2, 4).requires_grad_(true)).sum();
                engine.Backward(loss);
                engine.Step();
            }
            Assert.True(engine.ActivationCheckpointing.WasUsed);
            Assert.Equal(1, engine.ActivationCheckpointing.Stats.TotalCheckpoints);
        }
        finally
        {
            engine.Dispose();
        }
        Assert.NotSame(configured, DeepSpeed.Checkpointing.Current);
        Assert.False(DeepSpeed.Checkpointing.IsConfigured());
        Assert.False(DeepSpeed.Checkpointing.WasUsed);
    }
}
