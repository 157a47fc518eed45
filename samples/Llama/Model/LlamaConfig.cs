using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// Shape of the sample LLaMA. <see cref="Vocab"/> is not a command-line option: the trainer sets it from the data
/// (the compact vocabulary, or GPT-2's whole vocabulary with <c>--full-vocab</c>), already padded.
/// </summary>
/// <param name="Vocab">Rows of the embedding and of the LM head (padded vocabulary size).</param>
/// <param name="DModel">Hidden size d (<c>--d-model</c>).</param>
/// <param name="Layers">Transformer blocks (<c>--layers</c>).</param>
/// <param name="Heads">Query heads (<c>--heads</c>); must divide d, and d / heads must be even for the rotary embedding.</param>
/// <param name="KvHeads">Key/value heads (<c>--kv-heads</c>); must divide <paramref name="Heads"/>. Fewer than
/// <paramref name="Heads"/> is grouped-query attention; equal is plain multi-head attention.</param>
/// <param name="FfnHidden">Hidden size of the SwiGLU MLP (<c>--ffn-hidden</c>); null means LLaMA's
/// ⌈(2/3)·4d⌉ rounded up to a multiple of 16 (<see cref="DefaultFfnHidden"/>).</param>
/// <param name="Seq">Sequence length T (<c>--seq</c>).</param>
/// <param name="Dropout">Attention and residual dropout (<c>--dropout</c>).</param>
/// <param name="RopeTheta">Base of the rotary embedding's frequencies.</param>
/// <param name="NormEps">Epsilon of the RMSNorms.</param>
public sealed record LlamaConfig(
    int Vocab = 512,
    int DModel = 128,
    int Layers = 4,
    int Heads = 4,
    int KvHeads = 2,
    int? FfnHidden = null,
    int Seq = 128,
    double Dropout = 0.0,
    double RopeTheta = 10000.0,
    double NormEps = 1e-5)
{
    /// <summary>Dimension of one attention head: d / heads.</summary>
    public int HeadDim => DModel / Heads;

    /// <summary>The MLP's hidden size: <see cref="FfnHidden"/> or LLaMA's default for <see cref="DModel"/>.</summary>
    public int FfnHiddenSize => FfnHidden ?? DefaultFfnHidden(DModel);

    /// <summary>LLaMA's SwiGLU width: (2/3)·4d (so the three matrices cost what GPT's two 4d ones do), rounded up to a multiple of 16.</summary>
    public static int DefaultFfnHidden(int dModel)
    {
        int twoThirds = (int)Math.Ceiling(8.0 * dModel / 3.0);
        return (twoThirds + 15) / 16 * 16;
    }

    /// <summary>
    /// Number of parameters (no biases): embedding V·d; per block two RMSNorms 2d, q and o projections 2·d·d,
    /// k and v projections 2·d·(kvHeads·headDim), SwiGLU 3·d·f; final RMSNorm d; untied LM head d·V.
    /// </summary>
    public long ParameterCount
    {
        get
        {
            long d = DModel, kv = (long)KvHeads * HeadDim, f = FfnHiddenSize;
            long block = 2 * d + 2 * d * d + 2 * d * kv + 3 * d * f;
            return (long)Vocab * d + Layers * block + d + d * Vocab;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the option when the shape is impossible.</summary>
    public void Validate()
    {
        if (Vocab < 2) throw new ArgumentException($"the vocabulary must have at least 2 ids, got {Vocab}");
        ShapeChecks.Transformer(DModel, Layers, Heads, Dropout);
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"--heads: the head dimension --d-model / --heads = {HeadDim} must be even for the rotary embedding");
        if (KvHeads < 1 || Heads % KvHeads != 0)
            throw new ArgumentException($"--kv-heads must divide --heads ({Heads}), got {KvHeads}");
        ShapeChecks.Positive("--ffn-hidden", FfnHiddenSize);
        ShapeChecks.Positive("--seq", Seq);
    }
}
