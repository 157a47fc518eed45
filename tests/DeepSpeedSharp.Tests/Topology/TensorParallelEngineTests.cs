using System.Text.Json;
using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.TestWorker.Scenarios;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Topology;

/// <summary>
/// Four real processes as tensor-parallel 2 × data-parallel 2 (a <c>PipelineParallelGrid</c> passed as mpu) training a
/// hand-split MLP: per-step losses and clipped gradient norms equal those of the full MLP trained by a plain TorchSharp
/// loop under ZeRO 0, 1 and 2, and a checkpoint saved there carries DeepSpeed's file names and resumes exactly.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class TensorParallelEngineTests(ITestOutputHelper output)
{
    private const int Steps = 20, Gas = 2, Mb = 3, Dp = 2;
    private const double Clip = 0.05, Lr = 1e-2;

    private static List<(double Loss, double Norm)> Run(int stage, int steps, string dir, string? extra = null, int ranks = 4, int gas = Gas)
    {
        var log = Path.Combine(dir, "steps.jsonl");
        var args = new List<string> { "--tp", "2", "--stage", $"{stage}", "--steps", $"{steps}", "--gas", $"{gas}", "--mb", $"{Mb}",
            "--clip", $"{Clip}", "--lr", $"{Lr}", "--out", log };
        if (extra != null) args.AddRange(extra.Split(' '));
        var results = RankProcesses.Run("tp-mlp", ranks, args, new RankOptions { Timeout = TimeSpan.FromSeconds(180) });
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        return File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => (e.GetProperty("loss").GetDouble(), e.GetProperty("norm").GetDouble())).ToList();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TensorTwoByDataTwoMatchesThePlainReference(int stage)
    {
        var reference = TensorParallelMlp.PlainReference(Steps, Dp, Gas, Mb, Clip, Lr);
        Assert.True(reference.All(r => r.Norm > Clip * 2), "the clip value must be small enough that every step clips");
        var dir = Directory.CreateTempSubdirectory("dss-tp").FullName;
        var run = Run(stage, Steps, dir);
        Assert.Equal(Steps, run.Count);
        double lossDiff = run.Zip(reference, (a, b) => Math.Abs(a.Loss - b.Loss)).Max();
        double normDiff = run.Zip(reference, (a, b) => Math.Abs(a.Norm - b.Norm) / b.Norm).Max();
        output.WriteLine($"stage {stage}: max loss difference {lossDiff:E2}, max relative norm difference {normDiff:E2}; losses {reference[0].Loss:F5} → {reference[^1].Loss:F5}");
        Assert.True(lossDiff <= 1e-5, $"stage {stage}: losses differ from the plain reference by {lossDiff}");
        Assert.True(normDiff <= 1e-5, $"stage {stage}: gradient norms differ from the plain reference by {normDiff} (relative)");
        Assert.True(reference[^1].Loss < reference[0].Loss);
    }

    [Fact]
    public void CheckpointCarriesTensorRanksAndResumesExactly()
    {
        var dir = Directory.CreateTempSubdirectory("dss-tpck").FullName;
        var ckpt = Path.Combine(dir, "ckpt");
        var full = Run(1, 8, dir, $"--save-at 4 --save-dir {ckpt}");
        var tag = Path.Combine(ckpt, "global_step4");
        var files = Directory.GetFiles(tag).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[]
        {
            "checkpoint.json",
            "zero_pp_rank_0_mp_rank_00_optim_states.safetensors", "zero_pp_rank_0_mp_rank_01_optim_states.safetensors",
            "zero_pp_rank_1_mp_rank_00_optim_states.safetensors", "zero_pp_rank_1_mp_rank_01_optim_states.safetensors",
        }, files);
        var manifest = CheckpointManifest.Read(tag);
        Assert.Equal(2, manifest.WorldSize);
        Assert.Equal(2, manifest.ModelParallelSize);
        Assert.Equal(new[] { 1, 2, 2 }, manifest.Topology!.Dims);
        Assert.Equal(2, manifest.Shards.Count);
        Assert.All(manifest.Shards, s => Assert.Equal(new long[] { 8, 8 }, s.Parameters.Single(p => p.Name == "w1").Shape));

        var resumedDir = Path.Combine(dir, "resumed");
        Directory.CreateDirectory(resumedDir);
        var resumed = Run(1, 8, resumedDir, $"--resume {ckpt}");
        Assert.Equal(4, resumed.Count);
        Assert.Equal(full.Skip(4).Select(s => s.Loss), resumed.Select(s => s.Loss));
        Assert.Equal(full.Skip(4).Select(s => s.Norm), resumed.Select(s => s.Norm));

        // The same checkpoint on tensor 2 × data 1 (two ranks, twice the accumulation: the same global batch):
        // the optimizer state reshards across the data axis and the run continues the curve.
        var reshardedDir = Path.Combine(dir, "resharded");
        Directory.CreateDirectory(reshardedDir);
        var resharded = Run(2, 8, reshardedDir, $"--resume {ckpt}", ranks: 2, gas: Gas * 2);
        double diff = full.Skip(4).Zip(resharded, (a, b) => Math.Abs(a.Loss - b.Loss)).Max();
        Assert.True(diff <= 1e-5, $"resuming a tp 2 × dp 2 checkpoint on tp 2 × dp 1 (ZeRO-2) differs by {diff}");

        // Export merges the tensor slices into the full model (column slices on dim 0, row slices on dim 1, the
        // replicated bias once): a tp = 1 run started from it computes the loss the tp = 2 run had at that step.
        var exported = Path.Combine(dir, "merged.safetensors");
        CheckpointExport.Export(ckpt, "global_step4", exported);
        var merged = DeepSpeedSharp.IO.SafeTensors.Read(exported);
        Assert.Equal(new long[] { 16, 8 }, merged["w1"].shape);
        Assert.Equal(new long[] { 4, 16 }, merged["w2"].shape);
        Assert.Equal(new long[] { 4 }, merged["b2"].shape);
        var tp1Dir = Path.Combine(dir, "tp1");
        Directory.CreateDirectory(tp1Dir);
        var tp1 = Run(1, 5, tp1Dir, $"--tp 1 --init-weights {exported} --first-step 4", ranks: 2);
        Assert.Single(tp1);
        Assert.True(Math.Abs(tp1[0].Loss - full[4].Loss) <= 1e-5, $"tp 1 from the merged export: loss {tp1[0].Loss}, the tp 2 run had {full[4].Loss}");
    }
}
