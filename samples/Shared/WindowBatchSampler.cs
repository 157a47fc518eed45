using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// Chooses the samples of every (global step, data-parallel rank, micro-step) as a pure function of those numbers, so
/// that the global batch of a step is the same whatever the number of ranks (and a resumed run continues with the
/// batches it would have had): global sample g = s·G + (r·gas + m)·mb + k, where G = mb·gas·dp is the global batch.
/// Random order takes the window of T + 1 tokens starting at a position hashed from (seed, g); sequential order takes
/// tokens [g·(T+1), (g+1)·(T+1)), wrapping around the text. The samples share it; each wraps its own token store.
/// </summary>
public class WindowBatchSampler
{
    private readonly long length;
    private readonly Func<long, long> tokenAt;
    private readonly int seq;
    private readonly bool sequential;
    private readonly int seed;

    /// <param name="length">Number of tokens.</param>
    /// <param name="tokenAt">The token id at a position.</param>
    /// <param name="seq">Sequence length T: each sample is T inputs and the T next tokens as targets.</param>
    /// <param name="sequential">Sequential rather than random windows.</param>
    /// <param name="seed">Seed of the random windows.</param>
    public WindowBatchSampler(long length, Func<long, long> tokenAt, int seq, bool sequential, int seed)
    {
        ArgumentNullException.ThrowIfNull(tokenAt);
        if (length < seq + 1)
            throw new ArgumentException($"--seq: the data has {length} tokens; at least --seq + 1 = {seq + 1} are needed");
        this.length = length;
        this.tokenAt = tokenAt;
        this.seq = seq;
        this.sequential = sequential;
        this.seed = seed;
    }

    /// <summary>Input and target token ids [mb, T] (int64) for one micro-step of one data-parallel rank.</summary>
    public (Tensor Input, Tensor Target) MicroBatch(long step, int dataParallelRank, int microStep, int microBatch, int gas, int globalBatch)
    {
        var input = new long[microBatch * seq];
        var target = new long[microBatch * seq];
        long first = FirstSample(step, dataParallelRank, microStep, microBatch, gas, globalBatch);
        for (int k = 0; k < microBatch; k++)
        {
            long start = Start(first + k);
            for (int i = 0; i < seq; i++)
            {
                input[k * seq + i] = tokenAt((start + i) % length);
                target[k * seq + i] = tokenAt((start + i + 1) % length);
            }
        }
        return (torch.tensor(input, new long[] { microBatch, seq }), torch.tensor(target, new long[] { microBatch, seq }));
    }

    /// <summary>The T input tokens of global sample <paramref name="sample"/> (its window without the last, target-only token).</summary>
    public long[] Window(long sample)
    {
        long start = Start(sample);
        var tokens = new long[seq];
        for (int i = 0; i < seq; i++) tokens[i] = tokenAt((start + i) % length);
        return tokens;
    }

    /// <summary>The global index g of the first sample of a micro-step: s·G + (r·gas + m)·mb.</summary>
    public static long FirstSample(long step, int dataParallelRank, int microStep, int microBatch, int gas, int globalBatch) =>
        step * globalBatch + ((long)dataParallelRank * gas + microStep) * microBatch;

    private long Start(long sample)
    {
        long windows = length - seq;   // valid starts: [0, windows)
        if (sequential) return sample * (seq + 1) % length;
        ulong h = Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)sample);
        return (long)(h % (ulong)windows);
    }

    /// <summary>SplitMix64 finaliser: a fixed, platform-independent hash (also the BERT sample's masking draws).</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
