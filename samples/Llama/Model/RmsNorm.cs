using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// Root-mean-square layer normalisation (Zhang &amp; Sennrich 2019), as LLaMA and Megatron-DeepSpeed compute it:
/// y = x / sqrt(mean(x²) + eps) in fp32, cast back to the input's dtype, times a learned weight (initialised to ones;
/// no bias, no mean subtraction).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    /// <param name="dim">Size of the normalised (last) dimension.</param>
    /// <param name="eps">Added to the mean square before the square root.</param>
    public RmsNorm(int dim, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(dim, ScalarType.Float32));
        this.eps = eps;
        RegisterComponents();
    }

    /// <summary>The learned scale [dim].</summary>
    public Parameter Weight => weight;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xf = x.to(ScalarType.Float32);
        var normed = xf * xf.pow(2).mean(new long[] { -1 }, keepdim: true).add(eps).rsqrt();
        return (normed.to(x.dtype) * weight).MoveToOuterDisposeScope();
    }
}
