using DeepSpeedSharp.Samples.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Data;

/// <summary>
/// The BERT sample's micro-batches: windows of T − 2 text ids chosen by a <see cref="WindowBatchSampler"/> (a pure
/// function of step, data-parallel rank and micro-step, so the global batch is the same for any number of ranks),
/// framed as [CLS] w … [SEP] and masked by <see cref="BertMasking"/>.
/// </summary>
public sealed class MaskedLmBatches
{
    private readonly WindowBatchSampler windows;
    private readonly BertVocabulary vocabulary;
    private readonly int seq, seed;

    /// <param name="tokens">The text's model ids.</param>
    /// <param name="vocabulary">The ids of [CLS], [SEP], [MASK] and the text.</param>
    /// <param name="seq">Sequence length T, [CLS] and [SEP] included.</param>
    /// <param name="sequential">Sequential rather than random windows.</param>
    /// <param name="seed">The run's --seed: window positions and masks.</param>
    public MaskedLmBatches(int[] tokens, BertVocabulary vocabulary, int seq, bool sequential, int seed)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        windows = new WindowBatchSampler(tokens.Length, i => tokens[i], seq - 2, sequential, seed);
        this.vocabulary = vocabulary;
        this.seq = seq;
        this.seed = seed;
    }

    /// <summary>Masked input ids and labels [mb, T] (int64) for one micro-step of one data-parallel rank.</summary>
    public (Tensor Input, Tensor Labels) MicroBatch(long step, int dataParallelRank, int microStep, int microBatch, int gas, int globalBatch)
    {
        var input = new long[microBatch * seq];
        var labels = new long[microBatch * seq];
        long first = WindowBatchSampler.FirstSample(step, dataParallelRank, microStep, microBatch, gas, globalBatch);
        for (int k = 0; k < microBatch; k++)
        {
            var sample = input.AsSpan(k * seq, seq);
            sample[0] = vocabulary.Cls;
            windows.Window(first + k).CopyTo(sample[1..]);
            sample[^1] = vocabulary.Sep;
            BertMasking.Apply(sample, labels.AsSpan(k * seq, seq), vocabulary, seed, first + k);
        }
        return (torch.tensor(input, new long[] { microBatch, seq }), torch.tensor(labels, new long[] { microBatch, seq }));
    }
}
