using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// The last pipeline layer of the LLaMA: hidden states → lm_head(norm(x)), this tensor rank's vocabulary slice of the
/// logits [B, T, vocab / tp] — the part of <see cref="LlamaModel"/> after its blocks (parameters <c>norm.weight</c> and
/// <c>lm_head.weight</c>; the head is untied).
/// </summary>
public sealed class LlamaHead : nn.Module<Tensor, Tensor>
{
    private readonly RmsNorm norm;
    private readonly nn.Module<Tensor, Tensor> lm_head;

    /// <param name="config">The model's shape.</param>
    /// <param name="layers">Where the norm and the LM head come from.</param>
    public LlamaHead(LlamaConfig config, LlamaLayers layers) : base(nameof(LlamaHead))
    {
        norm = layers.Norm(config.DModel, config.NormEps);
        lm_head = layers.ColumnLinear(config.DModel, config.Vocab, gatherOutput: false);
        RegisterComponents();
    }

    /// <summary>The logits of the final hidden states.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return lm_head.call(norm.call(x)).MoveToOuterDisposeScope();
    }
}
