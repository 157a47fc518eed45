using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// BERT's masked-LM head (<c>cls.predictions</c>): transform = LayerNorm(GELU(dense(x))), then a decoder d → vocab
/// with a bias. The decoder is not tied to the word embedding: under ZeRO-3 each module gathers its own parameters,
/// so a weight used by two modules would need a second gather; an untied decoder keeps every stage the same model.
/// </summary>
public sealed class BertMlmHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear transform_dense;
    private readonly LayerNorm transform_LayerNorm;
    private readonly Linear decoder;

    /// <param name="config">The model's shape.</param>
    public BertMlmHead(BertConfig config) : base(nameof(BertMlmHead))
    {
        transform_dense = BertInit.Linear(config.DModel, config.DModel);
        transform_LayerNorm = BertInit.LayerNorm(config.DModel, config.NormEps);
        decoder = BertInit.Linear(config.DModel, config.Vocab);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = transform_LayerNorm.call(nn.functional.gelu(transform_dense.call(x), GELU.Approximate.none));
        return decoder.call(h).MoveToOuterDisposeScope();
    }
}
