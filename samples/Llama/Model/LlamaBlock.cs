using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>A pre-norm LLaMA block: h = x + attn(rmsnorm(x)), then h + mlp(rmsnorm(h)).</summary>
public sealed class LlamaBlock : nn.Module<Tensor, Tensor>
{
    private readonly RmsNorm input_layernorm;
    private readonly LlamaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly SwiGluMlp mlp;

    /// <param name="config">The model's shape.</param>
    /// <param name="layers">Where the projections come from.</param>
    public LlamaBlock(LlamaConfig config, LlamaLayers layers) : base(nameof(LlamaBlock))
    {
        input_layernorm = layers.Norm(config.DModel, config.NormEps);
        self_attn = new LlamaAttention(config, layers);
        post_attention_layernorm = layers.Norm(config.DModel, config.NormEps);
        mlp = new SwiGluMlp(config, layers);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.call(input_layernorm.call(x));
        return (h + mlp.call(post_attention_layernorm.call(h))).MoveToOuterDisposeScope();
    }
}
