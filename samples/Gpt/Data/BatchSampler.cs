using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Gpt.Data;

/// <summary>
/// The GPT sample's batches: <see cref="WindowBatchSampler"/> over a <see cref="TokenCorpus"/> — global sample
/// g = s·G + (r·gas + m)·mb + k, so the global batch of a step is the same whatever the number of ranks.
/// </summary>
public sealed class BatchSampler(TokenCorpus corpus, int seq, bool sequential, int seed)
    : WindowBatchSampler(corpus.Tokens.Length, i => corpus.Tokens[i], seq, sequential, seed);
