using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Llama.Data;

/// <summary>
/// The LLaMA sample's batches: <see cref="WindowBatchSampler"/> over the tokenised text's model ids — a pure function
/// of (step, data-parallel rank, micro-step), so the global batch is the same for any number of ranks.
/// </summary>
public sealed class BatchSampler(int[] tokens, int seq, bool sequential, int seed)
    : WindowBatchSampler(tokens.Length, i => tokens[i], seq, sequential, seed);
