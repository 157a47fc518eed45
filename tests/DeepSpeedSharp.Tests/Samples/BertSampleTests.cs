using DeepSpeedSharp.Samples.Bert;
using DeepSpeedSharp.Samples.Bert.Data;
using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Samples.Shared.Text;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>The BERT sample's vocabulary, masking (deterministic, 15% with 80/10/10), batches and options.</summary>
public class BertSampleTests
{
    private static readonly BertVocabulary Vocabulary = new(VocabularyMap.Compact(Enumerable.Range(100, 1000)));

    [Fact]
    public void SpecialIdsFollowTheTextIdsAndThePaddingIsAMultipleOf8()
    {
        Assert.Equal(1000, Vocabulary.TextIds);
        Assert.Equal((1000, 1001, 1002, 1003), (Vocabulary.Pad, Vocabulary.Cls, Vocabulary.Sep, Vocabulary.Mask));
        Assert.Equal(1008, Vocabulary.PaddedSize);
        Assert.Equal(8, new BertVocabulary(VocabularyMap.Compact(Enumerable.Range(0, 4))).PaddedSize);
    }

    [Fact]
    public void MaskingChooses15PercentThen80MaskTen10RandomAnd10Kept()
    {
        const int samples = 4000, t = 128;
        var counts = new Dictionary<BertMasking.Kind, int>();
        for (int s = 0; s < samples; s++)
        {
            var tokens = Sample(t, s);
            var original = tokens.ToArray();
            var labels = new long[t];
            var kinds = BertMasking.Apply(tokens, labels, Vocabulary, seed: 5, sample: s);
            Assert.Equal(BertMasking.Kind.NotChosen, kinds[0]);  // [CLS] and [SEP] are never chosen
            Assert.Equal(BertMasking.Kind.NotChosen, kinds[^1]);
            for (int i = 0; i < t; i++)
            {
                counts[kinds[i]] = counts.GetValueOrDefault(kinds[i]) + 1;
                bool chosen = kinds[i] != BertMasking.Kind.NotChosen;
                Assert.Equal(chosen ? original[i] : BertForMaskedLM.IgnoreIndex, labels[i]);
                if (kinds[i] == BertMasking.Kind.Masked) Assert.Equal(Vocabulary.Mask, tokens[i]);
                if (kinds[i] == BertMasking.Kind.Random) Assert.InRange(tokens[i], 0, Vocabulary.TextIds - 1);
                if (kinds[i] is BertMasking.Kind.Kept or BertMasking.Kind.NotChosen) Assert.Equal(original[i], tokens[i]);
            }
        }
        int chosenCount = samples * t - counts[BertMasking.Kind.NotChosen];
        double share = (double)chosenCount / (samples * (t - 2));
        double Part(BertMasking.Kind k) => (double)counts[k] / chosenCount;
        Assert.InRange(share, 0.145, 0.155);  // ~76,000 chosen positions: the standard error is ~0.001
        Assert.InRange(Part(BertMasking.Kind.Masked), 0.79, 0.81);
        Assert.InRange(Part(BertMasking.Kind.Random), 0.095, 0.105);
        Assert.InRange(Part(BertMasking.Kind.Kept), 0.095, 0.105);
    }

    [Fact]
    public void MasksAreAPureFunctionOfSeedAndSampleAndNeverEmpty()
    {
        long[] Masked(int seed, long sample, int t = 32)
        {
            var tokens = Sample(t, 0);
            BertMasking.Apply(tokens, new long[t], Vocabulary, seed, sample);
            return tokens;
        }
        Assert.Equal(Masked(1, 7), Masked(1, 7));
        Assert.NotEqual(Masked(1, 7), Masked(1, 8));
        Assert.NotEqual(Masked(1, 7), Masked(2, 7));
        // Three positions: one is always chosen, even where no draw is below 15%.
        for (int s = 0; s < 200; s++)
        {
            var labels = new long[5];
            BertMasking.Apply(Sample(5, s), labels, Vocabulary, 3, s);
            Assert.Contains(labels, l => l != BertForMaskedLM.IgnoreIndex);
        }
    }

    [Fact]
    public void OneRankWithTwoMicroStepsSeesWhatTwoRanksSee()
    {
        var tokens = Enumerable.Range(0, 3000).Select(i => i % 1000).ToArray();
        var batches = new MaskedLmBatches(tokens, Vocabulary, seq: 16, sequential: false, seed: 9);
        var (oneIn, oneLabels) = batches.MicroBatch(step: 3, dataParallelRank: 0, microStep: 1, microBatch: 4, gas: 2, globalBatch: 8);
        var (twoIn, twoLabels) = batches.MicroBatch(step: 3, dataParallelRank: 1, microStep: 0, microBatch: 4, gas: 1, globalBatch: 8);
        Assert.Equal(oneIn.data<long>().ToArray(), twoIn.data<long>().ToArray());
        Assert.Equal(oneLabels.data<long>().ToArray(), twoLabels.data<long>().ToArray());
        Assert.Equal(new long[] { 4, 16 }, oneIn.shape);
        var first = oneIn.data<long>().ToArray();
        Assert.Equal(Vocabulary.Cls, first[0]);
        Assert.Equal(Vocabulary.Sep, first[15]);
        var (again, _) = batches.MicroBatch(3, 0, 1, 4, 2, 8);
        Assert.Equal(first, again.data<long>().ToArray());
    }

    [Fact]
    public void OptionsParseAndBadInputIsOneLineNamingTheOption()
    {
        var config = Path.Combine(Directory.CreateTempSubdirectory("dss-bert-options").FullName, "c.json");
        File.WriteAllText(config, "{}");
        var o = BertOptions.Parse(new[] { "--d-model=64", "--layers", "4", "--checkpoint-activations", "--checkpoint-activations-interval", "2",
            "--deepspeed", "--deepspeed_config", config, "--local_rank=1", "--loss-log", "l.jsonl" });
        Assert.Equal((64, 4, 2, config, 1), (o.Model.DModel, o.Model.Layers, o.CheckpointInterval, o.DeepSpeedConfig, o.LocalRank));
        Assert.Equal(2, BertOptions.Parse(new[] { "--checkpoint-activations-interval", "2", "--checkpoint-activations" }).CheckpointInterval);
        Assert.Equal(3, BertOptions.Parse(new[] { "--checkpoint-activations=3" }).CheckpointInterval);
        Assert.Equal(1, BertOptions.Parse(new[] { "--checkpoint-activations" }).CheckpointInterval);
        Assert.Equal(0, BertOptions.Parse(Array.Empty<string>()).CheckpointInterval);
        void Fails(string expected, params string[] args)
        {
            var e = Assert.Throws<ArgumentException>(() => BertOptions.Parse(args));
            Assert.Contains(expected, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Fails("unknown option '--layer'", "--layer", "2");
        Fails("unknown option '--init-weights'", "--init-weights", "w.safetensors"); // not offered by this sample
        Fails("--checkpoint-activations-interval needs --checkpoint-activations", "--checkpoint-activations-interval", "2");
        Fails("--checkpoint-activations-interval needs a positive integer, got '0'", "--checkpoint-activations", "--checkpoint-activations-interval", "0");
        Fails("--heads must divide --d-model (64)", "--d-model", "64", "--heads", "5");
        Fails("--steps needs an integer >= 0", "--steps");
        Fails("--save-every needs --save-dir", "--save-every", "5");
        Fails("--checkpoint-activations-interval 8 is more than --layers 4", "--checkpoint-activations", "--checkpoint-activations-interval", "8");
    }

    /// <summary>[CLS] 0 1 2 … [SEP] shifted by <paramref name="offset"/> (text ids below 1000).</summary>
    private static long[] Sample(int t, int offset)
    {
        var tokens = new long[t];
        for (int i = 1; i < t - 1; i++) tokens[i] = (i + offset) % 1000;
        tokens[0] = Vocabulary.Cls;
        tokens[^1] = Vocabulary.Sep;
        return tokens;
    }
}
