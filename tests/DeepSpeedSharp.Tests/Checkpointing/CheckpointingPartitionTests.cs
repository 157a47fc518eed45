using TorchSharp;
using static DeepSpeedSharp.Tests.Checkpointing.CheckpointingTestUtil;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>partition_activations / cpu_checkpointing / contiguous_memory_optimization on one rank (model-parallel size 1).</summary>
[Collection("Checkpointing")]
public class CheckpointingPartitionTests : CheckpointingTestBase
{

    private (Dictionary<string, Tensor> grads, Tensor inputGrad) Step(Stage[] stages, Tensor x, bool checkpoint)
    {
        foreach (var s in stages) s.zero_grad();
        x.grad?.zero_();
        manual_seed(5);
        var h = x;
        foreach (var s in stages) h = checkpoint ? Ckpt.Checkpoint(s.call, h) : s.call(h);
        h.pow(2).sum().backward();
        Ckpt.ThrowIfBackwardFailed();
        var grads = stages.SelectMany((s, i) => Grads(s).Select(kv => ($"{i}.{kv.Key}", kv.Value))).ToDictionary(p => p.Item1, p => p.Item2);
        return (grads, x.grad!.clone());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void PartitionedCheckpointsGiveBitIdenticalGradients(bool cpu, bool contiguous)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var stages = Enumerable.Range(0, 3).Select(_ => new Stage(12, 0.25)).ToArray();
        var x = randn(5, 12).requires_grad_(true);
        var plain = Step(stages, x, checkpoint: false);
        long live = Ckpt.Stats.LiveCheckpoints, allocations = Ckpt.Buffers.Allocations;
        Ckpt.Configure(null, partitionActivations: true, checkpointInCpu: cpu, contiguousCheckpointing: contiguous, numCheckpoints: contiguous ? 3 : null);
        for (int step = 0; step < 3; step++)
        {
            var ckpt = Step(stages, x, checkpoint: true);
            AssertBitIdentical(plain.grads, ckpt.grads);
            Assert.True(BitEqual(plain.inputGrad, ckpt.inputGrad));
        }
        Assert.Equal(live, Ckpt.Stats.LiveCheckpoints);
        // the contiguous buffer is allocated once (one input position) and reused by every later step
        Assert.Equal(contiguous ? 1 : 0, Ckpt.Buffers.Allocations - allocations);
    }

    [Fact]
    public void ContiguousBufferHoldsEveryCheckpointsInputInOneAllocation()
    {
        using var scope = NewDisposeScope();
        Ckpt.Configure(null, partitionActivations: true, contiguousCheckpointing: true, numCheckpoints: 3);
        manual_seed(1);
        var stages = Enumerable.Range(0, 3).Select(_ => new Stage(4, 0.0)).ToArray();
        var x = randn(2, 4).requires_grad_(true);
        long baseline = Ckpt.Stats.CurrentBytes, allocations = Ckpt.Buffers.Allocations;
        var h = x;
        foreach (var s in stages) h = Ckpt.Checkpoint(s.call, h);
        Assert.Equal(3 * 8 * sizeof(float), Ckpt.Stats.CurrentBytes - baseline);
        Assert.Equal(1, Ckpt.Buffers.Allocations - allocations);
        h.sum().backward();
        Ckpt.ThrowIfBackwardFailed();
    }

    [Fact]
    public void MoreCheckpointsThanNumberCheckpointsIsAClearError()
    {
        using var scope = NewDisposeScope();
        Ckpt.Configure(null, partitionActivations: true, contiguousCheckpointing: true, numCheckpoints: 2);
        var stage = new Stage(4, 0.0);
        var h = randn(2, 4).requires_grad_(true);
        h = Ckpt.Checkpoint(stage.call, h);
        h = Ckpt.Checkpoint(stage.call, h);
        var e = Assert.Throws<InvalidOperationException>(() => Ckpt.Checkpoint(stage.call, h));
        Assert.Contains("number_checkpoints=2", e.Message);
        Ckpt.Reset(); // evaluation-style restart without backward
        Ckpt.Checkpoint(stage.call, h);
    }

    [Fact]
    public void HeterogeneousCheckpointsInTheContiguousBufferAreAClearError()
    {
        using var scope = NewDisposeScope();
        Ckpt.Configure(null, partitionActivations: true, contiguousCheckpointing: true, numCheckpoints: 4);
        var x = randn(2, 4).requires_grad_(true);
        var y = Ckpt.Checkpoint(t => t * 2, x);
        var e = Assert.Throws<InvalidOperationException>(() => Ckpt.Checkpoint(t => t.sum(dim: 0), y.reshape(-1).narrow(0, 0, 5)));
        Assert.Contains("same shape", e.Message);
    }

    [Fact]
    public void CpuCheckpointingKeepsTheSavedShareInHostMemoryAsACopy()
    {
        using var scope = NewDisposeScope();
        Ckpt.Configure(null, partitionActivations: true, checkpointInCpu: true);
        var x = randn(3, 3).requires_grad_(true);
        long baseline = Ckpt.Stats.CurrentBytes;
        var y = Ckpt.Checkpoint(t => t.exp(), x);
        Assert.Equal(9 * sizeof(float), Ckpt.Stats.CurrentBytes - baseline);
        using (no_grad()) x.mul_(0); // the saved copy is independent of the caller's tensor...
        y.sum().backward();
        Ckpt.ThrowIfBackwardFailed();
        Assert.False(BitEqual(x.grad!, ones(3, 3))); // ...so the recompute sees the original values: grad = exp(x_original)
    }
}
