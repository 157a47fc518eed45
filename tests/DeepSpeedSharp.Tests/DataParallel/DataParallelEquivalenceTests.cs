using DeepSpeedSharp.Training;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.DataParallel;

/// <summary>
/// Real processes under the launcher: stages 0, 1 and 2 give the losses of a plain TorchSharp training loop
/// (<see cref="PlainGptReference"/>) on the same global batch (via gradient accumulation), hold 1/N of the optimizer state (and, stage 2, of the gradients),
/// and send the bytes ring collectives imply.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class DataParallelEquivalenceTests(ITestOutputHelper output)
{
    private static string Config(int train, int micro, int stage, bool overlap = false) => $$"""
        { "train_batch_size": {{train}}, "train_micro_batch_size_per_gpu": {{micro}}, "steps_per_print": 100,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "zero_optimization": { "stage": {{stage}}, "reduce_bucket_size": 5000, "allgather_bucket_size": 7000,
                                 "overlap_comm": {{(overlap ? "true" : "false")}} } }
        """;

    [Fact]
    public void TwoRanksMatchThePlainReferenceForStages012()
    {
        // Global batch 16: the plain TorchSharp reference accumulates 4 micro-batches of 4; two ranks accumulate 2 each.
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4);
        var single = GptRun.Train(1, Config(16, 4, 0)); // for its byte figures
        var runs = new[] { 0, 1, 2 }.Select(stage => GptRun.Train(2, Config(16, 4, stage))).ToArray();
        for (int stage = 0; stage < 3; stage++)
        {
            double diff = PlainGptReference.MaxDifference(reference, runs[stage]);
            output.WriteLine($"2 ranks, stage {stage}: max |reference - engine| = {diff:G3}");
            Assert.True(diff <= 1e-5, $"stage {stage} on 2 ranks differs from the plain reference by {diff}");
        }
        Assert.True(GptRun.MaxDifference(runs[0], runs[1]) <= 1e-6, $"stage 1 vs 0: {GptRun.MaxDifference(runs[0], runs[1])}");
        Assert.True(GptRun.MaxDifference(runs[0], runs[2]) <= 1e-6, $"stage 2 vs 0: {GptRun.MaxDifference(runs[0], runs[2])}");
        Assert.True(reference.Losses[^1] < reference.Losses[0]);

        // Memory: stages 1-2 hold half the optimizer state of stage 0 (+ padding); stage 2 half the gradients.
        long paramBytes = single.ParameterBytes;            // 30,080 fp32 parameters
        Assert.InRange(runs[1].OptimizerStateBytes, runs[0].OptimizerStateBytes / 2, runs[0].OptimizerStateBytes / 2 * 1.01 + 64);
        Assert.InRange(runs[2].GradientBytes, paramBytes / 2, paramBytes / 2 + 64);

        // Communication per step (ring volumes, N = 2, M = gradient bytes): stage 0 all-reduce 2(N-1)/N·M = M;
        // stage 1 reduce-scatter + all-gather = M; stage 2 reduce-scatters every micro-step (gas 2) + all-gather = 1.5·M.
        // The sample adds one 8-byte loss all-reduce per step, the ZeRO norm another 8 bytes.
        AssertClose(paramBytes, runs[0].BytesSentLastStep);
        AssertClose(paramBytes, runs[1].BytesSentLastStep);
        AssertClose(paramBytes * 1.5, runs[2].BytesSentLastStep);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void OverlappedReductionGivesIdenticalLosses(int stage)
    {
        // overlap_comm launches the same buckets during backward instead of after it: the sums are the same.
        var plain = GptRun.Train(2, Config(16, 4, stage), steps: 8);
        var overlapped = GptRun.Train(2, Config(16, 4, stage, overlap: true), steps: 8);
        Assert.Equal(plain.Losses, overlapped.Losses);
    }

    [Fact]
    public void ThreeRanksWithUnevenPartitionsMatchThePlainReference()
    {
        // 30,080 parameters do not split evenly in 3 with buckets of 5,000: partitions straddle buckets and parameters.
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 12, microBatch: 2, steps: 12);
        foreach (int stage in new[] { 1, 2 })
        {
            var run = GptRun.Train(3, Config(12, 2, stage), steps: 12);
            double diff = PlainGptReference.MaxDifference(reference, run);
            output.WriteLine($"3 ranks, stage {stage}: max |reference - engine| = {diff:G3}");
            Assert.True(diff <= 1e-5, $"stage {stage} on 3 ranks differs from the plain reference by {diff}");
        }
    }

    [Fact]
    public void FourRanksHoldAQuarterOfTheOptimizerState()
    {
        var stage0 = GptRun.Train(4, Config(16, 2, 0), steps: 3);
        var stage2 = GptRun.Train(4, Config(16, 2, 2), steps: 3);
        Assert.InRange(stage2.OptimizerStateBytes, stage0.OptimizerStateBytes / 4, stage0.OptimizerStateBytes / 4 * 1.01 + 64);
        Assert.InRange(stage2.GradientBytes, stage0.ParameterBytes / 4, stage0.ParameterBytes / 4 + 64);
        Assert.True(GptRun.MaxDifference(stage0, stage2) <= 1e-6);
    }

    private static void AssertClose(double expected, long actual) =>
        Assert.True(Math.Abs(actual - expected) <= 0.05 * expected, $"bytes sent per step: expected about {expected}, got {actual}");
}
