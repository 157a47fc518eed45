using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>
/// The last pipeline layer of the GPT: [B, T, d] → lm_head(ln_f(x)) [B, T, vocab], the part of <see cref="GptModel"/>
/// after its blocks (parameters <c>ln_f.weight</c>, <c>ln_f.bias</c> and <c>lm_head.weight</c>; the head is untied).
/// </summary>
public sealed class GptHead : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm ln_f;
    private readonly Linear lm_head;

    /// <param name="config">The model's shape (width, vocabulary).</param>
    public GptHead(GptConfig config) : base(nameof(GptHead))
    {
        ln_f = nn.LayerNorm(config.DModel, eps: 1e-5);
        lm_head = nn.Linear(config.DModel, config.Vocab, hasBias: false);
        RegisterComponents();
    }

    /// <summary>The logits [B, T, vocab] of the final hidden states [B, T, d].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return lm_head.call(ln_f.call(x)).MoveToOuterDisposeScope();
    }
}
