using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.TestWorker.Scenarios;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Pipeline;

/// <summary>
/// Real processes train <see cref="PipelineToy"/> as a <c>PipelineModule</c> with <c>TrainBatch</c> on pipe × tensor ×
/// data grids; every step's loss and clipped gradient norm equal those of the unsplit model trained by a plain
/// TorchSharp loop, with the embedding tied to the head across the first and last stage (its gradient summed over
/// them) or untied. <c>EvalBatch</c> returns the reference's evaluation loss on every rank with <c>bcastLoss</c>, on the
/// last stage only without it, and then sends fewer bytes.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class PipelineEngineTests(ITestOutputHelper output)
{
    private const int Steps = 12, Gas = 4, Mb = 2, Blocks = 3;
    private const double Clip = 0.15, Lr = 1e-2;

    private sealed record Eval(int Rank, int Stage, double? Bcast, double? NoBcast, long BcastBytes, long NoBcastBytes);

    private static (List<(double Loss, double Norm)> Steps, List<Eval> Evals, string Stdout) Run(int ranks, string flags)
    {
        var dir = Directory.CreateTempSubdirectory("dss-pipe").FullName;
        var log = Path.Combine(dir, "steps.jsonl");
        var args = new List<string> { "--steps", $"{Steps}", "--gas", $"{Gas}", "--mb", $"{Mb}", "--blocks", $"{Blocks}",
            "--clip", $"{Clip}", "--lr", $"{Lr}", "--out", log };
        args.AddRange(flags.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var results = RankProcesses.Run("pipe-toy", ranks, args, new RankOptions { Timeout = TimeSpan.FromSeconds(180) });
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        var steps = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => (e.GetProperty("loss").GetDouble(), e.GetProperty("norm").GetDouble())).ToList();
        var evals = Enumerable.Range(0, ranks)
            .Select(r => JsonSerializer.Deserialize<Eval>(File.ReadAllText($"{log}.eval{r}"), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!)
            .ToList();
        return (steps, evals, string.Join('\n', results.Select(r => r.Stdout)));
    }

    [Theory]
    [InlineData(2, 2, 1, 0, true)]   // two stages, tied embedding/head
    [InlineData(2, 2, 1, 0, false)]  // two stages, untied
    [InlineData(4, 4, 1, 1, true)]   // four stages, ZeRO-1
    [InlineData(4, 2, 1, 1, true)]   // pipe 2 × data 2, ZeRO-1
    [InlineData(4, 2, 1, 2, true)]   // pipe 2 × data 2, ZeRO-2 (beyond DeepSpeed)
    [InlineData(4, 2, 2, 0, true)]   // pipe 2 × tensor 2
    [InlineData(8, 2, 2, 1, true)]   // pipe 2 × tensor 2 × data 2
    public void MatchesThePlainUnsplitModel(int ranks, int pp, int tp, int stage, bool tied) => Check(ranks, pp, tp, stage, tied, "", 1e-5);

    [Theory]
    [InlineData(4, 2, 1, 1, "--interval 1", 1e-5)]                       // activation checkpointing every layer
    [InlineData(2, 2, 1, 2, "--config-interval 2", 1e-5)]                // the same from the config's pipeline section
    [InlineData(2, 2, 1, 0, "--partition uniform", 1e-5)]
    [InlineData(2, 2, 1, 0, "--partition type:ToyBlock", 1e-5)]
    [InlineData(4, 2, 2, 0, "--pipe-partitioned 0", 1e-5)]               // whole tensors between stages (sequence parallelism's setting)
    [InlineData(4, 2, 1, 1, "--bf16 1", 2e-2)]                           // BF16 optimizer: fp32 master weights and gradient accumulation
    [InlineData(2, 2, 1, 0, "--virtual 2", 1e-5)]                        // interleaved schedule, 2 virtual stages per rank (beyond DeepSpeed)
    [InlineData(4, 4, 1, 1, "--virtual 2 --blocks 6", 1e-5)]             // 4 stages × 2 virtual stages
    [InlineData(4, 2, 1, 2, "--virtual 2", 1e-5)]                        // interleaved with data parallelism and ZeRO-2
    [InlineData(2, 2, 1, 0, "--run-ahead 1", 1e-5)]                      // 1F1B with stages running one more micro-batch ahead (beyond DeepSpeed)
    [InlineData(4, 2, 1, 2, "--run-ahead 2", 1e-5)]                      // the same, two ahead, with data parallelism and ZeRO-2
    public void OptionsMatchThePlainUnsplitModel(int ranks, int pp, int tp, int stage, string flags, double tolerance) =>
        Check(ranks, pp, tp, stage, tied: true, flags, tolerance);

    [Fact]
    public void RunningAheadWithVirtualStagesIsAConfigErrorThatNamesTheKey()
    {
        var results = RankProcesses.Run("pipe-toy", 2, ["--pp", "2", "--virtual", "2", "--run-ahead", "1", "--steps", "1", "--out", Path.GetTempFileName()],
            new RankOptions { Timeout = TimeSpan.FromSeconds(60) });
        foreach (var r in results)
        {
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("pipeline.run_ahead_micro_batches 1 does not combine with 2 virtual stages", r.Stdout + r.Stderr);
        }
    }

    private void Check(int ranks, int pp, int tp, int stage, bool tied, string flags, double tolerance)
    {
        int dp = ranks / (pp * tp);
        var words = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int blocks = Array.IndexOf(words, "--blocks") is var at and >= 0 ? int.Parse(words[at + 1]) : Blocks;
        var (reference, referenceEval) = PipelineToy.PlainReference(blocks, tied, Steps, dp, Gas, Mb, Clip, Lr);
        Assert.True(reference.Count(r => r.Norm > Clip) >= Steps / 2, $"the clip must act on most steps, so that the norm over all stages matters; norms {string.Join(", ", reference.Select(r => r.Norm))}");
        var (run, evals, stdout) = Run(ranks, $"--pp {pp} --tp {tp} --stage {stage} --tied {(tied ? 1 : 0)} {flags}");
        Assert.Equal(Steps, run.Count);
        double lossDiff = run.Zip(reference, (a, b) => Math.Abs(a.Loss - b.Loss)).Max();
        double normDiff = run.Zip(reference, (a, b) => Math.Abs(a.Norm - b.Norm) / b.Norm).Max();
        output.WriteLine($"pp {pp} × tp {tp} × dp {dp}, ZeRO {stage}, tied {tied} {flags}: max loss difference {lossDiff:E2}, max relative norm difference {normDiff:E2}; " +
                         $"losses {reference[0].Loss:F5} → {reference[^1].Loss:F5}");
        Assert.True(lossDiff <= tolerance, $"losses differ from the plain reference by {lossDiff}");
        Assert.True(normDiff <= Math.Max(tolerance, 1e-5) * 5, $"gradient norms differ from the plain reference by {normDiff} (relative)");
        Assert.True(reference[^1].Loss < reference[0].Loss);
        Assert.Contains("forward-refused: Forward() is not available on a pipeline engine", stdout);
        if (flags.Contains("interval")) Assert.Contains($"checkpoint interval {flags.Split(' ')[^1]}", stdout);
        // Stage 0 runs (pp − 1)·(1 + k) forwards ahead with run-ahead k (DeepSpeed's pp − 1 without), then the first steady forward.
        int runAhead = Array.IndexOf(words, "--run-ahead") is var ra and >= 0 ? int.Parse(words[ra + 1]) : 0;
        if (!flags.Contains("virtual")) Assert.Contains($"stage 0 runs {Math.Min(Gas, (pp - 1) * (1 + runAhead) + 1)} forward passes before its first backward", stdout);

        // EvalBatch: with bcastLoss every rank returns the loss; without it only the last stage does, and fewer bytes move.
        foreach (var e in evals) Assert.True(Math.Abs(e.Bcast!.Value - referenceEval) <= tolerance, $"rank {e.Rank}: eval loss {e.Bcast} vs {referenceEval}");
        foreach (var e in evals)
        {
            if (e.Stage == pp - 1) Assert.True(Math.Abs(e.NoBcast!.Value - referenceEval) <= tolerance, $"rank {e.Rank}: {e.NoBcast}");
            else Assert.Null(e.NoBcast);
        }
        Assert.True(evals.Sum(e => e.NoBcastBytes) < evals.Sum(e => e.BcastBytes),
            $"without the broadcast {evals.Sum(e => e.NoBcastBytes)} bytes, with it {evals.Sum(e => e.BcastBytes)}");
    }

    [Fact]
    public void CheckpointIsStoredPerLayerAndResumesOnAnyNumberOfStages()
    {
        var dir = Directory.CreateTempSubdirectory("dss-pipeck").FullName;
        var (full, _, _) = Run(4, $"--pp 2 --tp 1 --stage 1 --save-at 5 --save-dir {dir}");
        var tag = Path.Combine(dir, "global_step5");
        var files = Directory.GetFiles(tag).Select(Path.GetFileName).Order().ToArray();
        output.WriteLine(string.Join(" ", files));
        // DeepSpeed's names: a file of weights per layer (the parameterless function layer has none), the optimizer
        // partitions per data-parallel rank and stage.
        foreach (var layer in new[] { 0, 1, 2, 3, 5 }) Assert.Contains($"layer_{layer:D2}-model_00-model_states.safetensors", files);
        Assert.DoesNotContain("layer_04-model_00-model_states.safetensors", files);
        foreach (var name in new[] { "zero_pp_rank_0_mp_rank_00", "zero_pp_rank_1_mp_rank_00", "zero_pp_rank_0_mp_rank_01", "zero_pp_rank_1_mp_rank_01" })
            Assert.Contains($"{name}_optim_states.safetensors", files);

        // Export unites the stages into one file of the whole model, the tied embedding once.
        var exported = Path.Combine(dir, "model.safetensors");
        DeepSpeedSharp.Checkpoint.CheckpointExport.Export(dir, "global_step5", exported);
        var merged = DeepSpeedSharp.IO.SafeTensors.Read(exported);
        output.WriteLine("exported: " + string.Join(" ", merged.Keys.Order()));
        Assert.Contains("tied_modules.embed.weight", merged.Keys);
        foreach (var block in new[] { 1, 2, 3 }) Assert.Contains($"{block}.ln.weight", merged.Keys);
        Assert.Equal(new long[] { PipelineToy.Vocab, PipelineToy.D }, merged["tied_modules.embed.weight"].shape);
        foreach (var t in merged.Values) t.Dispose();

        // The same checkpoint resumed on 4 stages, on 1 stage (each with data parallelism 2 or 1: the same global batch).
        foreach (var (ranks, pp, dp) in new[] { (4, 4, 1), (2, 1, 2), (1, 1, 1) })
        {
            int gas = Gas * 2 / dp;
            var (resumed, _, _) = Run(ranks, $"--pp {pp} --tp 1 --stage 1 --resume {dir} --gas {gas} --mb {Mb}");
            Assert.Equal(Steps - 5, resumed.Count);
            double diff = resumed.Zip(full.Skip(5), (a, b) => Math.Abs(a.Loss - b.Loss)).Max();
            output.WriteLine($"resumed on pp {pp} × dp {dp}: max loss difference {diff:E2}");
            Assert.True(diff <= 1e-5, $"pp {pp} × dp {dp}: the resumed losses differ from the uninterrupted run's by {diff}");
        }
    }

    [Fact]
    public void MonitorsRecordTheBatchLossAndTheScheduleStepsOncePerBatch()
    {
        var dir = Directory.CreateTempSubdirectory("dss-pipemon").FullName;
        var (run, _, _) = Run(2, $"--pp 2 --tp 1 --stage 1 --csv {dir}");
        var losses = ReadCsv(Path.Combine(dir, "pipe", "Train_Samples_train_loss.csv"));
        var lrs = ReadCsv(Path.Combine(dir, "pipe", "Train_Samples_lr.csv"));
        output.WriteLine($"losses {string.Join(", ", losses.Select(l => l.ToString("F5")))}; lr {string.Join(", ", lrs)}");
        // Rank 0 is on the first stage: its monitor writes the loss the last stage computed, as TrainBatch returned it.
        Assert.Equal(Steps, losses.Count);
        foreach (var (csv, returned) in losses.Zip(run.Select(r => r.Loss))) Assert.True(Math.Abs(csv - returned) <= 1e-9, $"monitor {csv}, TrainBatch {returned}");
        // WarmupLR (linear, 4 steps) advanced once per TrainBatch: rising for 4 steps, then flat at the maximum.
        Assert.Equal(Steps, lrs.Count);
        for (int i = 1; i < 4; i++) Assert.True(lrs[i] > lrs[i - 1], $"lr {string.Join(", ", lrs)}");
        Assert.All(lrs.Skip(4), lr => Assert.Equal(0.01, lr, 12));
    }

    private static List<double> ReadCsv(string path) =>
        File.ReadAllLines(path).Skip(1).Select(l => double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
}
