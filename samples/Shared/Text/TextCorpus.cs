namespace DeepSpeedSharp.Samples.Shared.Text;

/// <summary>
/// A text file tokenised with GPT-2's BPE (<see cref="Gpt2Tokenizer"/>) as one string, mapped to the model's ids
/// through a <see cref="VocabularyMap"/> (compact by default, the full GPT-2 vocabulary on request).
/// </summary>
public sealed class TextCorpus
{
    private TextCorpus(int[] tokens, VocabularyMap vocabulary, long bytes, string description)
    {
        Tokens = tokens;
        Vocabulary = vocabulary;
        Bytes = bytes;
        Description = description;
    }

    /// <summary>The text shipped with the samples (<c>samples/Llama/data/corpus.txt</c>, copied by the Llama and Bert projects to <c>data/corpus.txt</c> next to their assemblies).</summary>
    public static string DefaultPath => Path.Combine(AppContext.BaseDirectory, "data", "corpus.txt");

    /// <summary>The model's token ids, in text order.</summary>
    public int[] Tokens { get; }

    /// <summary>GPT-2 ids → model ids.</summary>
    public VocabularyMap Vocabulary { get; }

    /// <summary>Size of the text in UTF-8 bytes.</summary>
    public long Bytes { get; }

    /// <summary>Where the tokens came from (for the log).</summary>
    public string Description { get; }

    /// <summary>Reads and tokenises a UTF-8 text file.</summary>
    /// <param name="path">The text file (<c>--data</c>).</param>
    /// <param name="fullVocab">Use GPT-2's whole vocabulary instead of the compact one (<c>--full-vocab</c>).</param>
    public static TextCorpus Load(string path, bool fullVocab)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--data: file '{path}' does not exist");
        var bytes = File.ReadAllBytes(path);
        string text;
        try { text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (System.Text.DecoderFallbackException) { throw new ArgumentException($"--data: '{path}' is not UTF-8 text"); }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        return FromText(text, fullVocab, Path.GetFileName(path), bytes.LongLength);
    }

    /// <summary>Tokenises <paramref name="text"/>.</summary>
    public static TextCorpus FromText(string text, bool fullVocab, string name = "text", long? bytes = null)
    {
        var gpt2 = Gpt2Tokenizer.Encode(text);
        if (gpt2.Count < 2) throw new ArgumentException($"--data: '{name}' has {gpt2.Count} token(s); a text of at least a few sentences is needed");
        var map = fullVocab ? VocabularyMap.Full() : VocabularyMap.Compact(gpt2);
        var tokens = new int[gpt2.Count];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = map.ToModel(gpt2[i]);
        long size = bytes ?? System.Text.Encoding.UTF8.GetByteCount(text);
        return new TextCorpus(tokens, map, size, $"{name} ({size} bytes, {tokens.Length} GPT-2 tokens, vocabulary {map})");
    }
}
