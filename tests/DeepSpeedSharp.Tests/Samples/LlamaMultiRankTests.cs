using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>The LLaMA sample under `dss launch`: data parallelism over a <c>PipelineParallelGrid</c> of 2 × 1 × 1.</summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class LlamaMultiRankTests(ITestOutputHelper output)
{
    [Fact]
    public void TwoRanksMatchOneRankAtTheSameGlobalBatchUnderZero1()
    {
        // Global batch 8: one rank accumulates 2 micro-batches of 4, two ranks take one each. The sampler is a pure
        // function of (step, data-parallel rank, micro-step), so both see the same 8 samples every step.
        const string config = """
            { "train_batch_size": 8, "train_micro_batch_size_per_gpu": 4, "steps_per_print": 100,
              "optimizer": { "type": "AdamW", "params": { "lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
              "zero_optimization": { "stage": 1 } }
            """;
        var one = LlamaRun.Train(1, config, steps: 20);
        var two = LlamaRun.Train(2, config, steps: 20);
        double diff = LlamaRun.MaxDifference(one, two);
        output.WriteLine($"losses 1 rank: first {one.Losses[0]:F6}, last {one.Losses[^1]:F6}; max |1 rank - 2 ranks| = {diff:G3}");
        Assert.True(diff <= 1e-5, $"2 ranks differ from 1 rank by {diff}");
        Assert.True(one.Losses[^1] < one.Losses[0] - 0.5);
        Assert.Contains("micro 4 × gas 2 × dp 1", one.Output);
        Assert.Contains("micro 4 × gas 1 × dp 2", two.Output);
        // ZeRO-1: each of the two ranks holds half the optimizer state.
        Assert.InRange(two.OptimizerStateBytes, one.OptimizerStateBytes / 2, one.OptimizerStateBytes / 2 + 64);
    }
}
