using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// Causal self-attention with rotary position embeddings and optional grouped-query attention: separate bias-free
/// q (d → heads·hd), k and v (d → kvHeads·hd) column-parallel projections, RoPE on q and k, each group of
/// heads / kvHeads query heads sharing one key/value head, <c>scaled_dot_product_attention</c> with a causal mask,
/// and a row-parallel output projection (heads·hd → d).
/// <para>Written for tensor parallelism: a rank runs <see cref="LlamaLayers.HeadsPerRank"/>(heads) query heads and
/// HeadsPerRank(kvHeads) key/value heads — the heads of its slices of the q/k/v outputs, which keep the grouping
/// because query heads [r·H/tp, (r+1)·H/tp) use exactly key/value heads [r·K/tp, (r+1)·K/tp). With one rank that is
/// every head.</para>
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> q_proj;
    private readonly nn.Module<Tensor, Tensor> k_proj;
    private readonly nn.Module<Tensor, Tensor> v_proj;
    private readonly nn.Module<Tensor, Tensor> o_proj;
    private readonly Dropout resid_dropout;
    private readonly RotaryEmbedding rotary;
    private readonly int headDim;
    private readonly double attentionDropout;
    private readonly LlamaLayers layers;

    /// <param name="config">The model's shape.</param>
    /// <param name="layers">Where the projections come from, and how many heads this rank runs.</param>
    public LlamaAttention(LlamaConfig config, LlamaLayers layers) : base(nameof(LlamaAttention))
    {
        int d = config.DModel;
        headDim = config.HeadDim;
        HeadsPerRank = layers.HeadsPerRank(config.Heads);
        KvHeadsPerRank = layers.HeadsPerRank(config.KvHeads);
        q_proj = layers.ColumnLinear(d, config.Heads * headDim, gatherOutput: false);
        k_proj = layers.ColumnLinear(d, config.KvHeads * headDim, gatherOutput: false);
        v_proj = layers.ColumnLinear(d, config.KvHeads * headDim, gatherOutput: false);
        o_proj = layers.RowLinear(config.Heads * headDim, d);
        resid_dropout = nn.Dropout(config.Dropout);
        rotary = new RotaryEmbedding(headDim, config.RopeTheta);
        attentionDropout = config.Dropout;
        this.layers = layers;
        RegisterComponents();
    }

    /// <summary>Query heads this rank runs.</summary>
    public int HeadsPerRank { get; }

    /// <summary>Key/value heads this rank runs.</summary>
    public int KvHeadsPerRank { get; }

    /// <summary>Channels per head.</summary>
    public int HeadDim => headDim;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Batch and sequence come from the projections' output, not from x, so that a sequence-parallel input
        // (gathered by the column-parallel layer) is handled the same way.
        var qOut = q_proj.call(x);
        long b = qOut.shape[0], t = qOut.shape[1];
        var q = qOut.view(b, t, HeadsPerRank, headDim).transpose(1, 2);
        var k = k_proj.call(x).view(b, t, KvHeadsPerRank, headDim).transpose(1, 2);
        var v = v_proj.call(x).view(b, t, KvHeadsPerRank, headDim).transpose(1, 2);
        (q, k) = rotary.Apply(q, k);
        if (KvHeadsPerRank != HeadsPerRank)
        {
            int group = HeadsPerRank / KvHeadsPerRank;
            k = k.repeat_interleave(group, dim: 1);
            v = v.repeat_interleave(group, dim: 1);
        }
        Tensor y;
        // Attention dropout acts on this rank's heads: the model-parallel RNG stream (different per tensor rank).
        using (training && attentionDropout > 0 ? layers.ParallelRegionRng() : null)
            y = nn.functional.scaled_dot_product_attention(q, k, v, p: training ? attentionDropout : 0.0, is_casual: true);
        y = y.transpose(1, 2).contiguous().view(b, t, HeadsPerRank * headDim);
        var output = o_proj.call(y);
        using (layers.SequenceParallel ? layers.ParallelRegionRng() : null) output = resid_dropout.call(output);
        return output.MoveToOuterDisposeScope();
    }
}
