using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// The BERT sample under `dss launch --num_gpus 2` with its shipped configs: ZeRO-1, -2 and -3 in fp32 with the encoder
/// checkpointed every 2 layers give the same losses as each other and as a plain TorchSharp loop; bf16 trains; a
/// resumed run continues exactly.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class BertMultiRankTests(ITestOutputHelper output)
{
    private const string Checkpointed = "--checkpoint-activations --checkpoint-activations-interval 2";

    /// <summary>The model of <see cref="BertRun.SmallModel"/> (the vocabulary comes from the text).</summary>
    private static readonly BertConfig Small = new(DModel: 64, Layers: 4, Heads: 4, Seq: 32);

    [Fact]
    public void ZeroStagesOneTwoThreeAgreeAndMatchAPlainTorchSharpLoop()
    {
        const int steps = 50;
        var runs = new[] { "zero1", "zero2", "zero3" }
            .ToDictionary(c => c, c => BertRun.Train(2, BertRun.ShippedConfig(c), steps, Checkpointed));
        var zero1 = runs["zero1"];
        Assert.Contains("micro 8 × gas 1 × dp 2", zero1.Output);
        Assert.Contains("activation checkpointing every 2 layer(s)", zero1.Output);

        // The shipped configs' optimizer, clip and schedule, written out by hand for the plain loop.
        var setup = new PlainBertSetup();
        var plain = PlainBertReference.Train(Small, ranks: 2, microBatch: 8, steps, setup);
        double lrDiff = BertRun.MaxDifference(zero1.LearningRates, Enumerable.Range(1, steps).Select(setup.LearningRate).ToArray());
        double stage2 = BertRun.MaxDifference(zero1.Losses, runs["zero2"].Losses);
        double stage3 = BertRun.MaxDifference(zero1.Losses, runs["zero3"].Losses);
        double reference = runs.Values.Max(r => BertRun.MaxDifference(plain, r.Losses));
        output.WriteLine($"loss {zero1.Losses[0]:F6} → {zero1.Losses[^1]:F6} over {steps} steps; max |ZeRO-1 − ZeRO-2| = {stage2:G3}, " +
                         $"|ZeRO-1 − ZeRO-3| = {stage3:G3}, |plain loop − any stage| = {reference:G3}; |lr − schedule| = {lrDiff:G3}");
        Assert.True(lrDiff <= 1e-12, $"the engine's learning rates differ from WarmupDecayLR's by {lrDiff}");
        Assert.True(stage2 <= 1e-6, $"ZeRO-2 differs from ZeRO-1 by {stage2}");
        Assert.True(stage3 <= 1e-6, $"ZeRO-3 differs from ZeRO-1 by {stage3}");
        Assert.True(reference <= 1e-5, $"the plain TorchSharp loop differs from the engine by {reference}");
        Assert.True(zero1.Losses[^5..].Average() < zero1.Losses[..5].Average() - 0.5, "the masked-LM loss did not fall");
    }

    [Fact]
    public void Bf16OnTwoRanksTrains()
    {
        var run = BertRun.Train(2, BertRun.ShippedConfig("bf16-zero1"), steps: 40, Checkpointed);
        double first = run.Losses[..5].Average(), last = run.Losses[^5..].Average();
        output.WriteLine($"bf16: mean loss of the first 5 steps {first:F4}, of the last 5 {last:F4}");
        Assert.Contains("precision=bf16", run.Output);
        Assert.All(run.Losses, l => Assert.True(double.IsFinite(l)));
        Assert.True(last < first - 0.5, $"bf16 loss did not fall: {first} → {last}");
    }

    [Fact]
    public void AResumedRunContinuesExactlyAsTheUninterruptedOne()
    {
        var dir = Directory.CreateTempSubdirectory("dss-bert-resume").FullName;
        var config = BertRun.ShippedConfig("zero2");
        var whole = BertRun.Train(2, config, steps: 16, Checkpointed, workingDirectory: dir);
        var ckpt = Path.Combine(dir, "ckpt");
        var firstHalf = BertRun.Train(2, config, steps: 8, $"{Checkpointed} --save-dir {ckpt}", workingDirectory: dir);
        var resumed = BertRun.Train(2, config, steps: 16, $"{Checkpointed} --resume {ckpt}", workingDirectory: dir);
        Assert.Contains("resumed from", resumed.Output);
        Assert.Equal(8, resumed.Losses.Length);
        double before = BertRun.MaxDifference(whole.Losses[..8], firstHalf.Losses);
        double after = BertRun.MaxDifference(whole.Losses[8..], resumed.Losses);
        double lr = BertRun.MaxDifference(whole.LearningRates[8..], resumed.LearningRates);
        output.WriteLine($"max |uninterrupted − resumed| over steps 9–16: loss {after:G3}, lr {lr:G3} (steps 1–8: {before:G3})");
        Assert.Equal(0, before);
        Assert.Equal(0, after);
        Assert.Equal(0, lr);
    }
}
