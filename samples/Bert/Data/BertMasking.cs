using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Bert.Data;

/// <summary>
/// BERT's masking of one sample, a pure function of (seed, global sample index): each position except [CLS] and [SEP]
/// is chosen for prediction with probability 15%; a chosen position becomes [MASK] (80%), a random text id (10%) or
/// stays as it is (10%), and its label is the original id; every other label is
/// <see cref="Model.BertForMaskedLM.IgnoreIndex"/>. A sample with no chosen position gets its position of smallest draw
/// chosen, so every sample (and every micro-batch) has a loss. The global sample index is
/// s·G + (r·gas + m)·mb + k (<see cref="WindowBatchSampler.FirstSample"/>), so the masks follow from (seed, step,
/// data-parallel rank, micro-step) — and, like the data, are the same for any number of ranks at the same global batch.
/// The draws are SplitMix64 hashes, not torch's generator: masking neither uses nor disturbs the model's RNG.
/// </summary>
public static class BertMasking
{
    /// <summary>The share of positions chosen for prediction.</summary>
    public const double ChooseProbability = 0.15;

    /// <summary>Of the chosen positions, the share replaced by [MASK].</summary>
    public const double MaskShare = 0.8;

    /// <summary>Of the chosen positions, the share replaced by a random text id (the rest keep their token).</summary>
    public const double RandomShare = 0.1;

    /// <summary>What one position became.</summary>
    public enum Kind
    {
        /// <summary>Not chosen: not predicted.</summary>
        NotChosen,
        /// <summary>Chosen, replaced by [MASK].</summary>
        Masked,
        /// <summary>Chosen, replaced by a random text id.</summary>
        Random,
        /// <summary>Chosen, left as it is.</summary>
        Kept,
    }

    /// <summary>
    /// Masks <paramref name="tokens"/> ([CLS] w … [SEP]) in place and writes the labels.
    /// </summary>
    /// <param name="tokens">One sample's ids; positions 1 … T − 2 may be replaced.</param>
    /// <param name="labels">Same length: the original id where chosen, IgnoreIndex elsewhere.</param>
    /// <param name="vocabulary">Where [MASK] and the random ids come from.</param>
    /// <param name="seed">The run's --seed.</param>
    /// <param name="sample">The global sample index.</param>
    /// <returns>What each position became.</returns>
    public static Kind[] Apply(Span<long> tokens, Span<long> labels, BertVocabulary vocabulary, int seed, long sample)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (labels.Length != tokens.Length) throw new ArgumentException("tokens and labels must have the same length");
        int t = tokens.Length;
        var kinds = new Kind[t];
        labels.Fill(Model.BertForMaskedLM.IgnoreIndex);
        ulong key = WindowBatchSampler.Mix(WindowBatchSampler.Mix((ulong)seed ^ 0x5DEECE66DUL) + (ulong)sample);
        int chosen = 0, smallest = 1;
        double smallestDraw = double.MaxValue;
        for (int i = 1; i < t - 1; i++)
        {
            double u = Draw(key, i, 0);
            if (u < smallestDraw) (smallestDraw, smallest) = (u, i);
            if (u >= ChooseProbability) continue;
            Choose(tokens, labels, kinds, vocabulary, key, i);
            chosen++;
        }
        if (chosen == 0 && t > 2) Choose(tokens, labels, kinds, vocabulary, key, smallest);
        return kinds;
    }

    private static void Choose(Span<long> tokens, Span<long> labels, Kind[] kinds, BertVocabulary vocabulary, ulong key, int i)
    {
        labels[i] = tokens[i];
        double u = Draw(key, i, 1);
        if (u < MaskShare)
        {
            tokens[i] = vocabulary.Mask;
            kinds[i] = Kind.Masked;
        }
        else if (u < MaskShare + RandomShare)
        {
            tokens[i] = (long)(Draw(key, i, 2) * vocabulary.TextIds);
            kinds[i] = Kind.Random;
        }
        else kinds[i] = Kind.Kept;
    }

    /// <summary>A uniform draw in [0, 1) for (sample key, position, which draw).</summary>
    private static double Draw(ulong key, int position, int which) =>
        (WindowBatchSampler.Mix(key + (ulong)(3 * position + which)) >> 11) * (1.0 / (1UL << 53));
}
