using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Native;

using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// The sample GPT under the launcher, as a user runs it: 6 steps (global batch 8, gradient accumulation, WarmupLR,
/// dropout) in one run against 3 + (save, new processes, load) 3. Same world size and stage: bit-identical losses;
/// other world sizes and stages: within 1e-5. Also a rank killed mid-save, and export against the trained weights.
/// </summary>
[Collection(DeepSpeedSharp.Tests.Infrastructure.MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class CheckpointMultiProcessTests
{
    private static string Dir() => Directory.CreateTempSubdirectory("dss-ckmp").FullName;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ResumeOnNewProcessesIsBitIdentical(int stage)
    {
        var ckpt = Dir();
        var full = CheckpointRun.Start(2, stage, 6, $"--save-dir {ckpt} --save-every 3");
        var resumed = CheckpointRun.Start(2, stage, 6, $"--resume {Path.Combine(ckpt, "global_step3")}");
        Assert.Equal(new[] { 4, 5, 6 }, resumed.Losses.Keys.Order());
        Assert.True(CheckpointRun.MaxDifference(full, resumed, 4, 6) == 0, $"stage {stage}: resumed losses differ by {CheckpointRun.MaxDifference(full, resumed, 4, 6)}");
        Assert.Equal("global_step6", File.ReadAllText(Path.Combine(ckpt, "latest")));
    }

    [Theory]
    [InlineData(1, "\"bf16\": { \"enabled\": true }, \"data_types\": { \"grad_accum_dtype\": \"fp32\" },")]
    [InlineData(2, "\"fp16\": { \"enabled\": true, \"initial_scale_power\": 20, \"loss_scale_window\": 2, \"hysteresis\": 1 },")]
    public void MixedPrecisionResumeIsBitIdentical(int stage, string precision)
    {
        // fp16 starts at 2^20 with a 2-step window, so the scaler skips steps and changes scale around the save:
        // resuming exactly needs its saved state.
        var ckpt = Dir();
        var full = CheckpointRun.Start(2, stage, 6, $"--save-dir {ckpt} --save-every 3", precision: precision);
        var resumed = CheckpointRun.Start(2, stage, 6, $"--resume {Path.Combine(ckpt, "global_step3")}", precision: precision);
        Assert.True(CheckpointRun.MaxDifference(full, resumed, 4, 6) == 0, $"resumed losses differ by {CheckpointRun.MaxDifference(full, resumed, 4, 6)}");
        if (precision.Contains("fp16"))
            Assert.Contains("loss_scaler", File.ReadAllText(Path.Combine(ckpt, "global_step3", "checkpoint.json")));
    }

    [Fact]
    public void ResumesAtOtherWorldSizesAndStages()
    {
        // No dropout here: its masks depend on the rank that draws them, so runs of different sizes differ by design.
        // Reference: never resized. Checkpoints at step 3 from 1 rank (stage 0), 2 ranks (stage 2) and 4 ranks (stage 1).
        var c1 = Dir();
        var c2 = Dir();
        var c4 = Dir();
        var c3 = Dir();
        var one = CheckpointRun.Start(1, 0, 6, $"--save-dir {c1} --save-every 3", dropout: 0);
        var two = CheckpointRun.Start(2, 2, 6, $"--save-dir {c2} --save-every 3", dropout: 0);
        CheckpointRun.Start(4, 1, 3, $"--save-dir {c4}", dropout: 0);
        CheckpointRun.Start(2, 3, 3, $"--save-dir {c3}", dropout: 0);
        Assert.True(CheckpointRun.MaxDifference(one, two, 1, 6) <= 1e-5);
        var cases = new (string Name, int Ranks, int Stage, string From)[]
        {
            ("2→1, stage 2→0", 1, 0, c2), ("1→2, stage 0→2", 2, 2, c1), ("2→4, stage 2→1", 4, 1, c2), ("4→2, stage 1→2", 2, 2, c4),
            ("2→2, stage 2→3", 2, 3, c2), ("2→1, stage 3→1", 1, 1, c3),
        };
        foreach (var (name, ranks, stage, from) in cases)
        {
            var run = CheckpointRun.Start(ranks, stage, 6, $"--resume {Path.Combine(from, "global_step3")}", dropout: 0);
            double diff = CheckpointRun.MaxDifference(one, run, 4, 6);
            Assert.True(diff <= 1e-5, $"{name}: continued losses differ from the never-resized run by {diff}\n{run.Output}");
        }
    }

    [Fact]
    public void ARankKilledMidSaveLeavesThePreviousCheckpointLoadable()
    {
        var ckpt = Dir();
        var log = Path.Combine(Dir(), "loss.jsonl");
        var crashed = CrashingSaveRun.Start(log, 6, $"--save-dir {ckpt} --save-every 3 --crash-at 6");
        Assert.True(crashed.Ranks[1].ExitCode == 86, crashed.Output);
        Assert.Equal("global_step3", File.ReadAllText(Path.Combine(ckpt, "latest")));
        Assert.False(Directory.Exists(Path.Combine(ckpt, "global_step6")));
        Assert.Equal(new[] { "global_step3" }, CheckpointInspector.Tags(ckpt));
        var report = CheckpointInspector.Inspect(ckpt, null, out bool ok);
        Assert.True(ok, report);
        Assert.Empty(Directory.GetDirectories(ckpt, ".tmp-*")); // the surviving rank removed the partial copy
        var resumed = CrashingSaveRun.Start(Path.Combine(Dir(), "resumed.jsonl"), 6, $"--resume {ckpt}");
        Assert.True(resumed.Ranks.All(r => r.ExitCode == 0), resumed.Output);
        Assert.Contains("resumed from", resumed.Ranks[0].Stdout);
        Assert.Equal(new[] { 4, 5, 6 }, resumed.Losses.Keys.Order()); // exactness of resuming is covered above
        // The steps after the resumed checkpoint repeat the crashed run's exactly (same data, state and schedule).
        foreach (int step in new[] { 4, 5, 6 }) Assert.Equal(crashed.Losses[step], resumed.Losses[step]);
    }

    [Fact]
    public void ExportWritesTheTrainedWeightsUnderTheModelsNames()
    {
        TorchRuntime.EnsureLoaded();
        var ckpt = Dir();
        var weights = Path.Combine(ckpt, "trained.safetensors");
        CheckpointRun.Start(2, 2, 3, $"--save-dir {ckpt} --save-weights {weights}");
        var out32 = Path.Combine(ckpt, "export", "model.safetensors");
        var out16 = Path.Combine(ckpt, "export", "model-bf16.safetensors");
        Assert.Equal(0, Dss("checkpoint", "export", ckpt, "--out", out32).Code);
        Assert.Equal(0, Dss("checkpoint", "export", ckpt, "--tag", "global_step3", "--out", out16, "--dtype", "bf16").Code);
        var expected = SafeTensors.Read(weights);
        var got = SafeTensors.Read(out32);
        var got16 = SafeTensors.Read(out16);
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (name, t) in expected)
        {
            Assert.True(t.eq(got[name]).all().item<bool>(), $"exported '{name}' differs from the trained weights");
            Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, got16[name].dtype);
            Assert.True(t.to(TorchSharp.torch.ScalarType.BFloat16).eq(got16[name]).all().item<bool>(), $"bf16 '{name}'");
        }
        var (code, output) = Dss("checkpoint", "inspect", ckpt);
        Assert.Equal(0, code);
        Assert.Contains("data-parallel size 2, model-parallel size 1; ZeRO stage 2, global steps 3", output);
        Assert.Contains("zero_pp_rank_1_mp_rank_00_optim_states.safetensors", output);
        Assert.Contains("all checksums verified", output);
        var (bad, err) = Dss("checkpoint", "export", Path.Combine(ckpt, "nope"), "--out", out32);
        Assert.Equal(1, bad);
        Assert.Contains("does not exist", err);
        Assert.DoesNotContain("   at ", err);
    }

    private static (int Code, string Output) Dss(params string[] args)
    {
        var run = ChildProcess.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "dss.dll"), .. args], timeout: TimeSpan.FromSeconds(60));
        return (run.ExitCode, run.Output);
    }
}
