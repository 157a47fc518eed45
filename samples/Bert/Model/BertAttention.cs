using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// BERT's attention sub-layer, post-LN: LayerNorm(x + dropout(dense(self-attention(x)))). The self-attention is
/// bidirectional multi-head attention (every token sees every token; the samples have no padding, so there is no mask)
/// with separate q, k, v projections with biases and scale 1/√head_dim.
/// </summary>
public sealed class BertAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear query;
    private readonly Linear key;
    private readonly Linear value;
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;
    private readonly int heads, headDim;
    private readonly double attentionDropout;

    /// <param name="config">The model's shape.</param>
    public BertAttention(BertConfig config) : base(nameof(BertAttention))
    {
        int d = config.DModel;
        heads = config.Heads;
        headDim = config.HeadDim;
        query = BertInit.Linear(d, d);
        key = BertInit.Linear(d, d);
        value = BertInit.Linear(d, d);
        dense = BertInit.Linear(d, d);
        LayerNorm = BertInit.LayerNorm(d, config.NormEps);
        dropout = nn.Dropout(config.Dropout);
        attentionDropout = config.Dropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        Tensor Heads(Linear projection) => projection.call(x).view(b, t, heads, headDim).transpose(1, 2);
        var y = nn.functional.scaled_dot_product_attention(Heads(query), Heads(key), Heads(value),
            p: training ? attentionDropout : 0.0, is_casual: false);
        y = y.transpose(1, 2).contiguous().view(b, t, heads * headDim);
        return LayerNorm.call(x + dropout.call(dense.call(y))).MoveToOuterDisposeScope();
    }
}
