namespace DeepSpeedSharp.Samples.Shared.Text;

/// <summary>
/// Maps GPT-2 token ids to the model's ids. GPT-2 has 50,257 ids, far more than a tiny model trained on a small text
/// needs, so by default the vocabulary is <em>compacted</em>: the distinct GPT-2 ids that occur in the training text,
/// sorted ascending, become model ids 0, 1, 2, ... (the i-th smallest GPT-2 id present is model id i). The map
/// depends only on the set of ids in the text, so every rank and every run on the same text builds the same one. The
/// model's vocabulary is the map's size padded up to a multiple of 8 (so that it divides tensor-parallel sizes 1, 2,
/// 4 and 8); the padding ids never occur in the data. With <c>--full-vocab</c> the map is the identity over all
/// 50,257 ids, padded to a multiple of 128 as Megatron does (50,304).
/// </summary>
public sealed class VocabularyMap
{
    /// <summary>The compact vocabulary is padded to a multiple of this.</summary>
    public const int CompactPadMultiple = 8;

    /// <summary>The full vocabulary is padded to a multiple of this (Megatron's <c>make_vocab_size_divisible_by</c>).</summary>
    public const int FullPadMultiple = 128;

    private readonly int[] gpt2Ids;
    private readonly Dictionary<int, int>? toModel;

    private VocabularyMap(int[] gpt2Ids, Dictionary<int, int>? toModel, int padMultiple)
    {
        this.gpt2Ids = gpt2Ids;
        this.toModel = toModel;
        PaddedSize = (gpt2Ids.Length + padMultiple - 1) / padMultiple * padMultiple;
    }

    /// <summary>The compact map of the ids that occur in <paramref name="tokens"/>.</summary>
    public static VocabularyMap Compact(IEnumerable<int> tokens)
    {
        var sorted = tokens.Distinct().Order().ToArray();
        if (sorted.Length > 0 && (sorted[0] < 0 || sorted[^1] >= Gpt2Tokenizer.VocabSize))
            throw new ArgumentException($"token ids must be GPT-2 ids in [0, {Gpt2Tokenizer.VocabSize}), got {(sorted[0] < 0 ? sorted[0] : sorted[^1])}");
        var toModel = new Dictionary<int, int>(sorted.Length);
        for (int i = 0; i < sorted.Length; i++) toModel[sorted[i]] = i;
        return new VocabularyMap(sorted, toModel, CompactPadMultiple);
    }

    /// <summary>The identity map over GPT-2's whole vocabulary.</summary>
    public static VocabularyMap Full() =>
        new(Enumerable.Range(0, Gpt2Tokenizer.VocabSize).ToArray(), null, FullPadMultiple);

    /// <summary>True for a compact map, false for the full vocabulary.</summary>
    public bool IsCompact => toModel != null;

    /// <summary>Ids in use (before padding).</summary>
    public int Count => gpt2Ids.Length;

    /// <summary>The model's vocabulary size: <see cref="Count"/> padded to a multiple of 8 (compact) or 128 (full).</summary>
    public int PaddedSize { get; }

    /// <summary>The GPT-2 id of each model id below <see cref="Count"/>, ascending.</summary>
    public IReadOnlyList<int> Gpt2Ids => gpt2Ids;

    /// <summary>The model id of a GPT-2 id.</summary>
    /// <exception cref="KeyNotFoundException">The id is not in a compact map (it does not occur in the text).</exception>
    public int ToModel(int gpt2Id)
    {
        if (toModel == null)
            return gpt2Id is >= 0 and < Gpt2Tokenizer.VocabSize ? gpt2Id : throw new KeyNotFoundException($"GPT-2 id {gpt2Id} is out of range");
        return toModel.TryGetValue(gpt2Id, out int id) ? id : throw new KeyNotFoundException($"GPT-2 id {gpt2Id} is not in the compact vocabulary");
    }

    /// <summary>The GPT-2 id of a model id (padding ids have none).</summary>
    public int ToGpt2(int modelId) => modelId >= 0 && modelId < gpt2Ids.Length ? gpt2Ids[modelId]
        : throw new ArgumentOutOfRangeException(nameof(modelId), $"model id {modelId} is not below the {gpt2Ids.Length} ids in use (ids up to {PaddedSize} are padding)");

    /// <summary>For the log: "compact: 2,345 of GPT-2's 50,257 ids, padded to 2,352".</summary>
    public override string ToString() => IsCompact
        ? $"compact: {Count} of GPT-2's {Gpt2Tokenizer.VocabSize} ids, padded to {PaddedSize}"
        : $"full GPT-2: {Count} ids, padded to {PaddedSize}";
}
