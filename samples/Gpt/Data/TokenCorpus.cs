namespace DeepSpeedSharp.Samples.Gpt.Data;

/// <summary>A flat sequence of token ids: a nanoGPT <c>.bin</c> file (little-endian uint16) or synthetic text.</summary>
public sealed class TokenCorpus
{
    private TokenCorpus(ushort[] tokens, string description)
    {
        Tokens = tokens;
        Description = description;
    }

    /// <summary>The token ids.</summary>
    public ushort[] Tokens { get; }

    /// <summary>Where the tokens came from (for the log).</summary>
    public string Description { get; }

    /// <summary>Reads a nanoGPT token file; every id must be below <paramref name="vocab"/>.</summary>
    public static TokenCorpus FromFile(string path, int vocab)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--data: file '{path}' does not exist");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length % 2 != 0) throw new ArgumentException($"--data: '{path}' has an odd number of bytes; expected little-endian uint16 tokens");
        var tokens = new ushort[bytes.Length / 2];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = (ushort)(bytes[2 * i] | (bytes[2 * i + 1] << 8));
            if (tokens[i] >= vocab)
                throw new ArgumentException($"--data: token {tokens[i]} at position {i} of '{path}' is not below --vocab {vocab}");
        }
        return new TokenCorpus(tokens, $"{path} ({tokens.Length} tokens)");
    }

    /// <summary>
    /// Deterministic synthetic text: a fixed random "grammar" in which each token follows from the one before it
    /// (a random successor table) 90% of the time and is uniform noise otherwise, so a model can learn it and the
    /// loss falls towards about 0.1·ln(vocab) + 0.33.
    /// </summary>
    public static TokenCorpus Synthetic(int vocab, int length, int seed)
    {
        var rng = new Random(seed);
        var successor = new int[vocab];
        for (int i = 0; i < vocab; i++) successor[i] = rng.Next(vocab);
        var tokens = new ushort[length];
        int previous = 0;
        for (int i = 0; i < length; i++)
        {
            int t = rng.NextDouble() < 0.1 ? rng.Next(vocab) : successor[previous];
            tokens[i] = (ushort)t;
            previous = t;
        }
        return new TokenCorpus(tokens, $"synthetic ({length} tokens, vocab {vocab}, seed {seed})");
    }
}
