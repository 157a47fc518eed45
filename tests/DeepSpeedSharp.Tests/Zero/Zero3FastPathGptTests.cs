using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>The sample GPT on 2 ranks under ZeRO-3: the Linear fast path and recomputing every unit give the same losses.</summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class Zero3FastPathGptTests
{
    // No reuse: every micro-step releases after forward, so the backward nodes run (not autograd's own graph).
    private static string Config(bool fastPath) => $$"""
        { "train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "steps_per_print": 100,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0, "stage3_max_reuse_distance": 0,
                                 "stage3_linear_fast_path": {{(fastPath ? "true" : "false")}} } }
        """;

    [Fact]
    public void TwoRankLossesAreIdenticalWithAndWithoutRecomputingLinearUnits()
    {
        var (fastLosses, fastOutput) = Train(recomputeAll: false);
        var (allLosses, allOutput) = Train(recomputeAll: true);

        // The small GPT has 16 units: wte, wpe, 2 × (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj), ln_f, lm_head.
        Assert.Contains("ZeRO-3: 16 units; 9 Linear units skip recomputation in backward, 7 are recomputed", fastOutput);
        Assert.Contains("ZeRO-3: 16 units; 0 Linear units skip recomputation in backward, 16 are recomputed (zero_optimization.stage3_linear_fast_path is false)", allOutput);
        Assert.DoesNotContain("units run with autograd's graph", fastOutput);
        Assert.Equal(8, fastLosses.Length);
        Assert.Equal(allLosses, fastLosses);
    }

    /// <summary>Trains 8 steps (2 micro-steps each per rank) under `dss launch --num_gpus 2`; returns the losses and the output.</summary>
    private static (double[] Losses, string Output) Train(bool recomputeAll)
    {
        var dir = Directory.CreateTempSubdirectory("dss-z3fast").FullName;
        var config = Path.Combine(dir, "ds.json");
        File.WriteAllText(config, Config(fastPath: !recomputeAll));
        var log = Path.Combine(dir, "loss.jsonl");
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", 2, $"{GptRun.SmallModel} --steps 8 --deepspeed_config {config} --loss-log {log}", dir);
        string output = stdout + stderr;
        Assert.True(code == 0, $"training exited with {code}:\n{output}");
        var losses = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();
        return (losses, output);
    }
}
