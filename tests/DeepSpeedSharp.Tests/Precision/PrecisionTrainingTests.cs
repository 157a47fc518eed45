using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>
/// bf16, fp16 and ZeRO-Offload training of the sample GPT in real processes, against fp32 training by a plain
/// TorchSharp loop (<see cref="PlainGptReference"/>).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class PrecisionTrainingTests(ITestOutputHelper output)
{
    private static string Config(int stage, string precision = "", string zeroExtra = "", int train = 16, int micro = 4) => $$"""
        { "train_batch_size": {{train}}, "train_micro_batch_size_per_gpu": {{micro}}, "steps_per_print": 1000,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          {{precision}}
          "zero_optimization": { "stage": {{stage}}, "stage3_param_persistence_threshold": 0 {{zeroExtra}} } }
        """;

    [Fact]
    public void Bf16TrainingOnTwoRanksStaysWithin2eMinus2OfFp32ForEveryStage()
    {
        var fp32 = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 100);
        foreach (int stage in new[] { 0, 1, 2, 3 })
        {
            var bf16 = GptRun.Train(2, Config(stage, "\"bf16\": { \"enabled\": true },"), steps: 100);
            double diff = PlainGptReference.MaxDifference(fp32, bf16);
            output.WriteLine($"bf16, 2 ranks, stage {stage}: max |fp32 reference - engine| = {diff:G3}");
            Assert.True(diff <= 2e-2, $"bf16 stage {stage} differs from fp32 by {diff}");
            Assert.True(diff > 0, "bf16 gave exactly the fp32 losses: the model did not run in bf16");
        }
    }

    [Fact]
    public void Fp32GradientAccumulationTracksFp32BetterThanBf16Accumulation()
    {
        // gas 8 on one rank: the BF16 optimizer (stage 1, grad_accum_dtype fp32) against bf16 accumulation.
        var fp32 = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 2, steps: 30);
        var bf16Accum = GptRun.Train(1, Config(1, "\"bf16\": { \"enabled\": true },", train: 16, micro: 2), steps: 30);
        var fp32Accum = GptRun.Train(1, Config(1, "\"bf16\": { \"enabled\": true }, \"data_types\": { \"grad_accum_dtype\": \"fp32\" },", train: 16, micro: 2), steps: 30);
        double Distance(GptRun r) => r.Losses.Zip(fp32.Losses, (a, b) => Math.Abs(a - b)).Sum();
        Assert.True(Distance(fp32Accum) < Distance(bf16Accum),
            $"fp32 accumulation should track fp32 more closely: {Distance(fp32Accum)} vs bf16 accumulation {Distance(bf16Accum)}");
    }

    [Fact]
    public void Fp16WithDynamicLossScalingTrains()
    {
        var fp32 = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 30);
        var fp16 = GptRun.Train(2, Config(2, "\"fp16\": { \"enabled\": true, \"initial_scale_power\": 12 },"), steps: 30);
        double diff = PlainGptReference.MaxDifference(fp32, fp16);
        output.WriteLine($"fp16, 2 ranks, stage 2: max |fp32 reference - engine| = {diff:G3}");
        Assert.True(diff <= 2e-2, $"fp16 differs from fp32 by {diff}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void OffloadedOptimizerGivesTheSameLosses(int stage)
    {
        var onDevice = GptRun.Train(2, Config(stage), steps: 10);
        var offloaded = GptRun.Train(2, Config(stage, zeroExtra: ", \"offload_optimizer\": { \"device\": \"cpu\" }" +
            (stage == 3 ? ", \"offload_param\": { \"device\": \"cpu\" }" : "")), steps: 10);
        Assert.True(GptRun.MaxDifference(onDevice, offloaded) <= 1e-6, $"stage {stage}: offload differs by {GptRun.MaxDifference(onDevice, offloaded)}");
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 10);
        double diff = PlainGptReference.MaxDifference(reference, onDevice);
        output.WriteLine($"2 ranks, stage {stage}: max |reference - engine| = {diff:G3}");
        Assert.True(diff <= 1e-5, $"stage {stage} on 2 ranks differs from the plain reference by {diff}");
        Assert.Contains("optimizer offloaded to the CPU", offloaded.Output);
    }
}
