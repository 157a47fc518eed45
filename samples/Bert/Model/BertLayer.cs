using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// One post-LN BERT encoder layer: a = <see cref="BertAttention"/>(x), then LayerNorm(a + dropout(output(GELU(intermediate(a))))),
/// with the exact (erf) GELU and an MLP d → f → d.
/// </summary>
public sealed class BertLayer : nn.Module<Tensor, Tensor>
{
    private readonly BertAttention attention;
    private readonly Linear intermediate;
    private readonly Linear output;
    private readonly LayerNorm output_LayerNorm;
    private readonly Dropout dropout;

    /// <param name="config">The model's shape.</param>
    public BertLayer(BertConfig config) : base(nameof(BertLayer))
    {
        attention = new BertAttention(config);
        intermediate = BertInit.Linear(config.DModel, config.FfnHiddenSize);
        output = BertInit.Linear(config.FfnHiddenSize, config.DModel);
        output_LayerNorm = BertInit.LayerNorm(config.DModel, config.NormEps);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var a = attention.call(x);
        var h = nn.functional.gelu(intermediate.call(a), GELU.Approximate.none);
        return output_LayerNorm.call(a + dropout.call(output.call(h))).MoveToOuterDisposeScope();
    }
}
