using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// BERT's initialisation (<c>initializer_range</c> 0.02): linear and embedding weights N(0, 0.02), biases 0, LayerNorm
/// weight 1 and bias 0. Every layer of the model is built here, in construction order, so that
/// <c>torch.manual_seed(s)</c> before the model's constructor fixes every weight.
/// </summary>
internal static class BertInit
{
    private const double Std = 0.02;

    /// <summary>A linear layer with a bias: weight N(0, 0.02), bias 0.</summary>
    public static Linear Linear(int inFeatures, int outFeatures)
    {
        var linear = nn.Linear(inFeatures, outFeatures, hasBias: true);
        using (no_grad())
        {
            nn.init.normal_(linear.weight!, 0.0, Std);
            linear.bias!.zero_();
        }
        return linear;
    }

    /// <summary>An embedding table [count, dim], N(0, 0.02).</summary>
    public static Embedding Embedding(int count, int dim)
    {
        var embedding = nn.Embedding(count, dim);
        using (no_grad()) nn.init.normal_(embedding.weight!, 0.0, Std);
        return embedding;
    }

    /// <summary>A LayerNorm over the hidden size: weight 1, bias 0 (TorchSharp's own initialisation).</summary>
    public static LayerNorm LayerNorm(int dim, double eps) => nn.LayerNorm(dim, eps: eps);
}
