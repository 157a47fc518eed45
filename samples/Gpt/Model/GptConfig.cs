using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>Shape of the sample GPT.</summary>
public sealed record GptConfig(int Vocab = 512, int DModel = 128, int Layers = 4, int Heads = 4, int Seq = 64, double Dropout = 0.0)
{
    /// <summary>Number of parameters: embeddings, per block 12·d² + 13·d, final LayerNorm, LM head.</summary>
    public long ParameterCount => (long)Vocab * DModel + (long)Seq * DModel + Layers * (12L * DModel * DModel + 13L * DModel)
                                  + 2L * DModel + (long)DModel * Vocab;

    /// <summary>Throws <see cref="ArgumentException"/> naming the option when the shape is impossible.</summary>
    public void Validate()
    {
        if (Vocab < 2) throw new ArgumentException($"--vocab must be at least 2, got {Vocab}");
        ShapeChecks.Transformer(DModel, Layers, Heads, Dropout);
        ShapeChecks.Positive("--seq", Seq);
    }
}
