using System.Diagnostics;
using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>The sample GPT on 2 ranks under ZeRO-3: the Linear fast path and recomputing every unit give the same losses.</summary>
[Collection(MultiProcessCollection.Name)]
public class Zero3FastPathGptTests
{
    private const string Config = """
        { "train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "steps_per_print": 100,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0 } }
        """;

    [Fact]
    public void TwoRankLossesAreIdenticalWithAndWithoutRecomputingLinearUnits()
    {
        var (fastLosses, fastOutput) = Train(recomputeAll: false);
        var (allLosses, allOutput) = Train(recomputeAll: true);

        // The small GPT has 16 units: wte, wpe, 2 × (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj), ln_f, lm_head.
        Assert.Contains("ZeRO-3: 16 units; 9 Linear units skip recomputation in backward, 7 are recomputed", fastOutput);
        Assert.Contains("ZeRO-3: 16 units; 0 Linear units skip recomputation in backward, 16 are recomputed (DSS_ZERO3_RECOMPUTE_ALL=1)", allOutput);
        Assert.Equal(8, fastLosses.Length);
        Assert.Equal(allLosses, fastLosses);
    }

    /// <summary>Trains 8 steps (2 micro-steps each per rank) under `dss launch --num_gpus 2`; returns the losses and the output.</summary>
    private static (double[] Losses, string Output) Train(bool recomputeAll)
    {
        var dir = Directory.CreateTempSubdirectory("dss-z3fast").FullName;
        var config = Path.Combine(dir, "ds.json");
        File.WriteAllText(config, Config);
        var log = Path.Combine(dir, "loss.jsonl");
        var bin = AppContext.BaseDirectory;
        var psi = new ProcessStartInfo("dotnet",
            $"{Path.Combine(bin, "dss.dll")} launch --num_gpus 2 --master_port {RankProcesses.FreePort()} " +
            $"{Path.Combine(bin, "Gpt.dll")} {GptRun.SmallModel} --steps 8 --deepspeed_config {config} --loss-log {log}")
        { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        if (recomputeAll) psi.Environment["DSS_ZERO3_RECOMPUTE_ALL"] = "1";
        else psi.Environment.Remove("DSS_ZERO3_RECOMPUTE_ALL");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(300_000)) { p.Kill(true); Assert.Fail($"training did not finish in 300 s:\n{stdout}"); }
        string output = stdout + stderr.Result;
        Assert.True(p.ExitCode == 0, $"training exited with {p.ExitCode}:\n{output}");
        var losses = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();
        return (losses, output);
    }
}
