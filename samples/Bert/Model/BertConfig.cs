using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// Shape of the sample BERT encoder. <see cref="Vocab"/> is not a command-line option: the trainer sets it from the
/// data (the compact GPT-2 vocabulary of the text plus BERT's special ids, padded; see <see cref="Data.BertVocabulary"/>).
/// </summary>
/// <param name="Vocab">Rows of the word embedding and of the MLM decoder (padded vocabulary size).</param>
/// <param name="DModel">Hidden size d (<c>--d-model</c>).</param>
/// <param name="Layers">Encoder layers (<c>--layers</c>).</param>
/// <param name="Heads">Attention heads (<c>--heads</c>); must divide d.</param>
/// <param name="FfnHidden">Hidden size of the GELU MLP (<c>--ffn-hidden</c>); null means BERT's 4·d.</param>
/// <param name="Seq">Sequence length T including [CLS] and [SEP] (<c>--seq</c>); also the rows of the position table.</param>
/// <param name="Dropout">Embedding, attention and hidden dropout (<c>--dropout</c>; BERT uses 0.1, the default here is 0).</param>
/// <param name="NormEps">Epsilon of the LayerNorms (BERT's 1e-12).</param>
public sealed record BertConfig(
    int Vocab = 512,
    int DModel = 128,
    int Layers = 4,
    int Heads = 4,
    int? FfnHidden = null,
    int Seq = 64,
    double Dropout = 0.0,
    double NormEps = 1e-12)
{
    /// <summary>Dimension of one attention head: d / heads.</summary>
    public int HeadDim => DModel / Heads;

    /// <summary>The MLP's hidden size: <see cref="FfnHidden"/> or 4·d.</summary>
    public int FfnHiddenSize => FfnHidden ?? 4 * DModel;

    /// <summary>
    /// Number of parameters: word V·d and position T·d embeddings and their LayerNorm 2d; per layer q, k, v and output
    /// projections 4·(d·d + d), two LayerNorms 4d, the MLP d·f + f + f·d + d; the MLM head's transform d·d + d and
    /// LayerNorm 2d, its decoder d·V + V.
    /// </summary>
    public long ParameterCount
    {
        get
        {
            long d = DModel, f = FfnHiddenSize, v = Vocab;
            long layer = 4 * (d * d + d) + 4 * d + d * f + f + f * d + d;
            return v * d + (long)Seq * d + 2 * d + Layers * layer + d * d + d + 2 * d + d * v + v;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the option when the shape is impossible.</summary>
    public void Validate()
    {
        if (Vocab < 2) throw new ArgumentException($"the vocabulary must have at least 2 ids, got {Vocab}");
        ShapeChecks.Transformer(DModel, Layers, Heads, Dropout);
        ShapeChecks.Positive("--ffn-hidden", FfnHiddenSize);
        if (Seq < 3) throw new ArgumentException($"--seq must be at least 3 ([CLS], one token, [SEP]), got {Seq}");
    }
}
