namespace DeepSpeedSharp.Profiling;

/// <summary>Multiply-accumulates and floating-point operations of some forward computation.</summary>
/// <param name="Macs">Multiply-accumulate operations (one multiply plus one add).</param>
/// <param name="Flops">Floating-point operations (2 per MAC for matrix products, plus element-wise work).</param>
public readonly record struct OpCost(long Macs, long Flops)
{
    /// <summary>Nothing.</summary>
    public static OpCost Zero => default;

    /// <summary>Sum of two costs.</summary>
    public static OpCost operator +(OpCost a, OpCost b) => new(a.Macs + b.Macs, a.Flops + b.Flops);

    /// <summary>A cost repeated <paramref name="n"/> times.</summary>
    public static OpCost operator *(OpCost a, long n) => new(a.Macs * n, a.Flops * n);
}

/// <summary>
/// The counting rules, the same as DeepSpeed's flops profiler: matrix products count M·N·K MACs and 2 FLOPs per MAC
/// (bias additions are not counted), element-wise functions count one FLOP per output element, LayerNorm counts
/// 5 FLOPs per element with an affine transform (4 without), embeddings and dropout count nothing.
/// </summary>
public static class FlopsFormulas
{
    /// <summary>A linear layer producing <paramref name="outFeatures"/> outputs per input row, applied to <paramref name="inputElements"/> input values.</summary>
    public static OpCost Linear(long inputElements, long outFeatures)
    {
        long macs = inputElements * outFeatures;
        return new(macs, 2 * macs);
    }

    /// <summary>A batched matrix product [.., m, k] × [.., k, n] repeated <paramref name="batch"/> times.</summary>
    public static OpCost MatMul(long batch, long m, long k, long n)
    {
        long macs = batch * m * k * n;
        return new(macs, 2 * macs);
    }

    /// <summary>LayerNorm over <paramref name="elements"/> values.</summary>
    public static OpCost LayerNorm(long elements, bool affine) => new(0, elements * (affine ? 5 : 4));

    /// <summary>An element-wise function (activation, softmax, scaling) over <paramref name="elements"/> values.</summary>
    public static OpCost Elementwise(long elements) => new(0, elements);

    /// <summary>
    /// The functional part of multi-head self-attention on a [batch, seq, dModel] input, outside its projection
    /// layers: scores q·kᵀ and the weighted sum att·v (each batch·heads × seq × seq × headDim MACs, i.e.
    /// batch·seq²·dModel), plus the score scaling and the softmax (one FLOP per score each). A causal mask does not
    /// change the count (the full product is computed, as in DeepSpeed's profiler).
    /// </summary>
    public static OpCost SelfAttentionCore(long batch, long seq, long dModel, long heads)
    {
        if (heads <= 0 || dModel % heads != 0) throw new ArgumentException($"heads must divide dModel: dModel {dModel}, heads {heads}");
        long headDim = dModel / heads, scores = batch * heads * seq * seq;
        return MatMul(batch * heads, seq, headDim, seq) * 2 + Elementwise(scores) * 2;
    }
}
