using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// Rotary position embeddings (RoPE, Su et al. 2021) in the "rotate half" layout used by LLaMA and Megatron-DeepSpeed:
/// channel pairs (i, i + headDim/2) of each head are rotated by the angle position · θ^(−2i/headDim). It has no
/// parameters; the angles are recomputed for each forward (they cost T · headDim/2 multiplications), so they never
/// follow the model's dtype cast: the rotation is done in fp32 and the result cast back.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly int headDim;
    private readonly double theta;

    /// <param name="headDim">Channels per head (even).</param>
    /// <param name="theta">Base of the frequencies (10,000 in LLaMA).</param>
    public RotaryEmbedding(int headDim, double theta)
    {
        if (headDim < 2 || headDim % 2 != 0) throw new ArgumentException($"the head dimension must be even for the rotary embedding, got {headDim}");
        this.headDim = headDim;
        this.theta = theta;
    }

    /// <summary>Rotates queries and keys [B, heads, T, headDim] by their positions 0..T−1.</summary>
    public (Tensor Q, Tensor K) Apply(Tensor q, Tensor k)
    {
        using var scope = NewDisposeScope();
        long t = q.shape[2];
        var (cos, sin) = Angles(t, q.device);
        var rq = Rotate(q, cos, sin);
        var rk = Rotate(k, cos, sin);
        return (rq.MoveToOuterDisposeScope(), rk.MoveToOuterDisposeScope());
    }

    /// <summary>cos and sin of the angles, [1, 1, T, headDim] in fp32 (each frequency twice: both halves).</summary>
    private (Tensor Cos, Tensor Sin) Angles(long t, Device device)
    {
        var exponents = arange(0, headDim, 2, dtype: ScalarType.Float64, device: device) / headDim;
        var inverseFrequencies = pow(theta, exponents).reciprocal();
        var positions = arange(t, dtype: ScalarType.Float64, device: device);
        var angles = outer(positions, inverseFrequencies);
        var both = cat(new[] { angles, angles }, dim: -1).to(ScalarType.Float32).view(1, 1, t, headDim);
        return (both.cos(), both.sin());
    }

    private static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        var xf = x.to(ScalarType.Float32);
        var halves = xf.chunk(2, dim: -1);
        var rotatedHalf = cat(new[] { halves[1].neg(), halves[0] }, dim: -1);
        return (xf * cos + rotatedHalf * sin).to(x.dtype);
    }
}
