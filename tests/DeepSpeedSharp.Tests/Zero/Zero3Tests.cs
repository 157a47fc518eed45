using DeepSpeedSharp.Training;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>ZeRO stage 3 in real processes: the losses of a plain TorchSharp loop, 1/N state per rank, gather limits, ZeroInit and the user APIs.</summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class Zero3Tests(ITestOutputHelper output)
{
    private static string Config(int train, int micro, int stage, string extra = "") => $$"""
        { "train_batch_size": {{train}}, "train_micro_batch_size_per_gpu": {{micro}}, "steps_per_print": 100,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "zero_optimization": { "stage": {{stage}}, "stage3_param_persistence_threshold": 0 {{extra}} } }
        """;

    [Fact]
    public void TwoAndThreeRanksMatchThePlainReferenceAndHoldHalfTheState()
    {
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4);
        var stage0 = GptRun.Train(1, Config(16, 4, 0)); // for its byte figures
        var two = GptRun.Train(2, Config(16, 4, 3));
        double diff2 = PlainGptReference.MaxDifference(reference, two);
        output.WriteLine($"2 ranks, stage 3: max |reference - engine| = {diff2:G3}");
        Assert.True(diff2 <= 1e-5, $"stage 3 on 2 ranks differs from the plain reference by {diff2}");

        // Between steps a rank holds half of stage 0's parameters, gradients and optimizer state (+ padding), plus the
        // reduce-scatter bucket: the whole model fits in reduce_bucket_size, so one slot packs every fp32 gradient for
        // both ranks and receives this rank's partition, 3 × the fp32 master partition (the parameter bytes).
        long reduceBuffers = 3 * two.ParameterBytes;
        long full = stage0.ParameterBytes + stage0.GradientBytes + stage0.OptimizerStateBytes;
        long half = two.ParameterBytes + two.GradientBytes + two.OptimizerStateBytes - reduceBuffers;
        Assert.InRange(half, full / 2, full / 2 * 1.02 + 1024);

        var referenceOf12 = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 12, microBatch: 2, steps: 20);
        var three = GptRun.Train(3, Config(12, 2, 3), steps: 20);
        double diff3 = PlainGptReference.MaxDifference(referenceOf12, three);
        output.WriteLine($"3 ranks, stage 3: max |reference - engine| = {diff3:G3}");
        Assert.True(diff3 <= 1e-5, $"stage 3 on 3 ranks differs from the plain reference by {diff3}");
    }

    [Fact]
    public void GatheredParameterBytesStayWithinTheLiveAndPrefetchLimits()
    {
        // Largest unit of the small model: mlp.c_fc, 32·128 + 128 = 4,224 elements.
        var unlimited = GptRun.Train(2, Config(8, 4, 3), steps: 4);
        // The limited run also reduce-scatters in buckets of 6,000 elements (two slots of at least the largest unit,
        // several buckets per backward), where the unlimited one keeps autograd's graph and reduces once: the same losses.
        var limited = GptRun.Train(2, Config(8, 4, 3, ", \"stage3_max_live_parameters\": 3000, \"stage3_prefetch_bucket_size\": 2000, " +
                                                      "\"stage3_max_reuse_distance\": 0, \"reduce_bucket_size\": 6000"), steps: 4);
        Assert.Equal(unlimited.Losses, limited.Losses);
        Assert.Contains("units run with autograd's graph", unlimited.Output);
        Assert.DoesNotContain("units run with autograd's graph", limited.Output);
        Assert.True(limited.GradientBytes < unlimited.GradientBytes, $"the 6,000-element buckets are not smaller: {limited.GradientBytes} vs {unlimited.GradientBytes}");
        Assert.NotNull(unlimited.PeakGatheredBytes);
        Assert.True(limited.PeakGatheredBytes <= (3000 + 4224) * 4, $"peak gathered {limited.PeakGatheredBytes} bytes");
        Assert.True(limited.PeakGatheredBytes < unlimited.PeakGatheredBytes, $"limits had no effect: {limited.PeakGatheredBytes} vs {unlimited.PeakGatheredBytes}");
    }

    [Fact]
    public void ZeroInitBuildsThePartitionedModelWithTheSameResult()
    {
        var plain = GptRun.Train(2, Config(8, 4, 3), steps: 4);
        var built = GptRun.Train(2, Config(8, 4, 3), steps: 4, extraArgs: "--zero-init");
        Assert.Equal(plain.Losses, built.Losses);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void GatheredParametersAndSixteenBitSaveWork(int ranks)
    {
        var dir = Directory.CreateTempSubdirectory("dss-z3api").FullName;
        var results = RankProcesses.Run("zero3-api", ranks, new[] { dir });
        RankProcesses.AssertAllSucceeded(results);
        Assert.True(File.Exists(Path.Combine(dir, "model1.safetensors")));
        Assert.False(File.Exists(Path.Combine(dir, "model0.safetensors")));
    }
}
