using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Data;

/// <summary>
/// Chooses the samples of every (global step, rank, micro-step) so that the global batch of a step is the same
/// whatever the number of ranks: global sample g = s·G + (r·gas + m)·mb + k, where G is the global batch.
/// Sequential order takes sample g as tokens [g·(T+1), (g+1)·(T+1)) (wrapping around the corpus); random order
/// takes a window at a position derived from (seed, g).
/// </summary>
public sealed class BatchSampler
{
    private readonly TokenCorpus corpus;
    private readonly int seq;
    private readonly bool sequential;
    private readonly int seed;

    public BatchSampler(TokenCorpus corpus, int seq, bool sequential, int seed)
    {
        if (corpus.Tokens.Length < seq + 1)
            throw new ArgumentException($"the data has {corpus.Tokens.Length} tokens; at least --seq + 1 = {seq + 1} are needed");
        this.corpus = corpus;
        this.seq = seq;
        this.sequential = sequential;
        this.seed = seed;
    }

    /// <summary>Input and target token ids [mb, T] (int64) for one micro-step of one rank.</summary>
    public (Tensor Input, Tensor Target) MicroBatch(long step, int rank, int microStep, int microBatch, int gas, int globalBatch)
    {
        var input = new long[microBatch * seq];
        var target = new long[microBatch * seq];
        long first = step * globalBatch + ((long)rank * gas + microStep) * microBatch;
        for (int k = 0; k < microBatch; k++)
        {
            long start = Start(first + k);
            for (int i = 0; i < seq; i++)
            {
                input[k * seq + i] = corpus.Tokens[(start + i) % corpus.Tokens.Length];
                target[k * seq + i] = corpus.Tokens[(start + i + 1) % corpus.Tokens.Length];
            }
        }
        return (torch.tensor(input, new long[] { microBatch, seq }), torch.tensor(target, new long[] { microBatch, seq }));
    }

    private long Start(long sample)
    {
        long windows = corpus.Tokens.Length - seq;   // valid starts: [0, windows)
        if (sequential) return sample * (seq + 1) % corpus.Tokens.Length;
        ulong h = Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)sample);
        return (long)(h % (ulong)windows);
    }

    /// <summary>SplitMix64 finaliser: a fixed, platform-independent hash.</summary>
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
