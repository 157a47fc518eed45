using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>
/// <c>bf16.bf16_master_weights_and_grads</c>, <c>bf16.bf16_optimizer_states</c> and
/// <c>fp16.fp16_master_weights_and_grads</c> on the sample GPT in real processes: the per-rank state bytes fall as
/// DeepSpeed's do (16-bit masters and gradient partitions; 16-bit moments with bf16_optimizer_states) and the losses
/// stay within 2e-2 of fp32 training by a plain TorchSharp loop.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class LowPrecisionMasterTests(ITestOutputHelper output)
{
    private const string Bf16 = "\"bf16\": { \"enabled\": true },";
    private const string Bf16Masters = "\"bf16\": { \"enabled\": true, \"bf16_master_weights_and_grads\": true },";
    private const string Bf16All = "\"bf16\": { \"enabled\": true, \"bf16_master_weights_and_grads\": true, \"bf16_optimizer_states\": true },";

    private static string Config(int stage, string precision, string zeroExtra = "", string extra = "") => $$"""
        { "train_batch_size": 16, "train_micro_batch_size_per_gpu": 4, "steps_per_print": 1000, {{extra}}
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          {{precision}}
          "zero_optimization": { "stage": {{stage}}, "stage3_param_persistence_threshold": 0 {{zeroExtra}} } }
        """;

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Bf16MastersAndOptimizerStatesHalveTheStateAndTrackFp32(int stage)
    {
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 100);
        var fp32Masters = GptRun.Train(2, Config(stage, Bf16), steps: 100);
        var low = GptRun.Train(2, Config(stage, Bf16All), steps: 100);
        double diff = PlainGptReference.MaxDifference(reference, low), baseline = PlainGptReference.MaxDifference(reference, fp32Masters);
        output.WriteLine($"stage {stage}, 2 ranks: max |fp32 reference - bf16 masters+states| = {diff:G3} (bf16 with fp32 masters: {baseline:G3})");
        output.WriteLine($"  rank-0 bytes, fp32 masters: parameters {fp32Masters.ParameterBytes}, gradients {fp32Masters.GradientBytes}, optimizer {fp32Masters.OptimizerStateBytes}");
        output.WriteLine($"  rank-0 bytes, bf16 masters+states: parameters {low.ParameterBytes}, gradients {low.GradientBytes}, optimizer {low.OptimizerStateBytes}");
        Assert.True(diff <= 2e-2, $"bf16 masters differ from fp32 by {diff}");
        Assert.True(GptRun.MaxDifference(fp32Masters, low) > 0, "bf16 masters gave exactly the fp32-master losses: the masters were not bf16");
        // Moments (2 per element) and the gradient partition go from 4 to 2 bytes per element, the master copy too.
        Assert.Equal(fp32Masters.OptimizerStateBytes, 2 * low.OptimizerStateBytes);
        // ZeRO-3's reduce-scatter bucket is fp32 in both runs, so it does not halve: the whole model fits in
        // reduce_bucket_size, so one slot packs every gradient for both ranks and receives this rank's partition of
        // P elements (P = the fp32 moments' bytes / 8).
        long reduceBuffers = stage == 3 ? 4 * (fp32Masters.OptimizerStateBytes / 8) * (2 + 1) : 0;
        Assert.Equal(fp32Masters.GradientBytes - reduceBuffers, 2 * (low.GradientBytes - reduceBuffers));
        Assert.Equal(fp32Masters.OptimizerStateBytes / 4, fp32Masters.ParameterBytes - low.ParameterBytes);
        Assert.Contains("16-bit master weights, gradients and optimizer states", low.Output);
    }

    [Fact]
    public void Bf16MastersWithFp32MomentsTrainOnDeviceAndOffloaded()
    {
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 100);
        var fp32Masters = GptRun.Train(2, Config(2, Bf16), steps: 100);
        var low = GptRun.Train(2, Config(2, Bf16Masters), steps: 100);
        double diff = PlainGptReference.MaxDifference(reference, low);
        output.WriteLine($"stage 2, 2 ranks: max |fp32 reference - bf16 masters, fp32 moments| = {diff:G3}");
        Assert.True(diff <= 2e-2, $"bf16 masters differ from fp32 by {diff}");
        Assert.Equal(fp32Masters.OptimizerStateBytes, low.OptimizerStateBytes); // fp32 moments
        Assert.Equal(fp32Masters.GradientBytes, 2 * low.GradientBytes);

        // ZeRO-Offload with bf16 masters: FusedAdam steps them on the host, with the same results.
        var offloaded = GptRun.Train(2, Config(2, Bf16Masters, ", \"offload_optimizer\": { \"device\": \"cpu\" }"), steps: 100);
        Assert.True(GptRun.MaxDifference(low, offloaded) <= 1e-6, $"offloaded bf16 masters differ by {GptRun.MaxDifference(low, offloaded)}");
    }

    [Fact]
    public void Fp16MastersTrainWithLossScaling()
    {
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 30);
        var fp16 = GptRun.Train(2, Config(1, "\"fp16\": { \"enabled\": true, \"initial_scale_power\": 12, \"fp16_master_weights_and_grads\": true },"), steps: 30);
        double diff = PlainGptReference.MaxDifference(reference, fp16);
        output.WriteLine($"fp16 masters, stage 1, 2 ranks: max |fp32 reference - engine| = {diff:G3}");
        Assert.True(diff <= 2e-2, $"fp16 masters differ from fp32 by {diff}");
    }

    [Fact]
    public void ProgressReportKeysTakeEffectAndKeysWithoutEffectAreListedAtStart()
    {
        var run = GptRun.Train(1, Config(1, Bf16All, ", \"round_robin_gradients\": true",
                extra: "\"memory_breakdown\": true, \"timers\": { \"throughput\": { \"enabled\": false } },")
            .Replace("\"steps_per_print\": 1000", "\"steps_per_print\": 5", StringComparison.Ordinal), steps: 10);
        var progress = run.Output.Split('\n').Where(l => l.Contains("[dss] step=", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, progress.Count);
        Assert.All(progress, l => Assert.DoesNotContain("samples/s", l));
        var memory = run.Output.Split('\n').Where(l => l.Contains("[dss] memory (MiB, this rank) | parameters: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, memory.Count);
        Assert.Contains("| optimizer state: ", memory[0]);
        // The timeline of each reported step: every phase of its 4 micro-steps, then the optimizer step.
        Assert.Contains("[dss] memory timeline of step 5 (MiB, this rank): phase | parameters | gradients", run.Output);
        Assert.Contains("[dss] memory timeline of step 10 (MiB, this rank)", run.Output);
        var phases = run.Output.Split('\n').Where(l => l.Contains("[dss]   micro-step ", StringComparison.Ordinal) || l.Contains("optimizer step ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2 * (4 * 3 + 2), phases.Count);
        Assert.Contains(phases, l => l.Contains("micro-step 3: after reduction", StringComparison.Ordinal));
        Assert.DoesNotContain("memory timeline of step 4 ", run.Output);
        // Keys without effect are listed once at start, with the reason.
        Assert.Contains("[dss] warning: 1 config key(s) have no effect in DeepSpeedSharp:", run.Output);
        Assert.Contains("  zero_optimization.round_robin_gradients: a CUDA-stream parallelism hint", run.Output);
    }
}
