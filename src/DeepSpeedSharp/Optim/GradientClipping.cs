using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// Global-norm gradient clipping with the semantics of DeepSpeed's <c>deepspeed.runtime.utils.clip_grad_norm_</c>
/// (what the <c>gradient_clipping</c> config key drives).
/// </summary>
public static class GradientClipping
{
    /// <summary>
    /// The L2 norm of all gradients taken together, as if concatenated into one vector. Null entries are skipped
    /// (parameters without a gradient). Each tensor's norm is computed in fp32 (fp64 for fp64 tensors; bf16/fp16 are
    /// upcast, as DeepSpeed's <c>.float().norm()</c>), and the squares are summed in fp64. An inf or NaN anywhere makes
    /// the result inf or NaN; no gradients gives 0.
    /// </summary>
    public static double GlobalNorm(IEnumerable<Tensor?> grads) => Math.Sqrt(SumOfSquares(grads));

    /// <summary>The square of <see cref="GlobalNorm"/> before the square root: each tensor's norm (fp32, fp64 for fp64
    /// tensors) squared and summed in fp64. Null entries are skipped.</summary>
    public static double SumOfSquares(IEnumerable<Tensor?> grads)
    {
        ArgumentNullException.ThrowIfNull(grads);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var norms = new List<Tensor>();
        foreach (var g in grads)
        {
            if (g is null) continue;
            if (!g.is_floating_point())
                throw new ArgumentException($"gradients must be floating point to take a norm, got {g.dtype}.", nameof(grads));
            var t = g.dtype is ScalarType.Float32 or ScalarType.Float64 ? g : g.to(ScalarType.Float32);
            norms.Add(t.norm());
        }
        if (norms.Count == 0) return 0;
        // One read of the device: the per-tensor norms are stacked (a norm on another device is moved first), then
        // widened to fp64 — exactly, so the sum is the same as of norms widened one by one — squared and added.
        var device = norms[0].device;
        for (int i = 1; i < norms.Count; i++)
            if (norms[i].device_type != device.type || norms[i].device_index != device.index) norms[i] = norms[i].to(device);
        return stack(norms).to(ScalarType.Float64).square().sum().item<double>();
    }

    /// <summary>
    /// Scales every gradient in place by <c>maxNorm / (norm + 1e-6)</c> when that factor is below 1 (i.e. when
    /// <c>norm + 1e-6 &gt; maxNorm</c>), exactly as DeepSpeed's <c>clip_grad_norm_</c>, and returns the norm before clipping.
    /// </summary>
    /// <param name="grads">The gradients (null entries are skipped).</param>
    /// <param name="maxNorm">The <c>gradient_clipping</c> value; must be positive.</param>
    /// <param name="precomputedNorm">The global norm when already known (e.g. reduced across data-parallel ranks);
    /// when null it is computed with <see cref="GlobalNorm"/>.</param>
    /// <remarks>As in DeepSpeed, a non-finite norm is not special-cased: a NaN norm multiplies the gradients by NaN and
    /// an infinite norm by 0 (inf entries become NaN). Check for overflow before clipping if steps should be skipped.</remarks>
    public static double ClipByGlobalNorm(IEnumerable<Tensor?> grads, double maxNorm, double? precomputedNorm = null)
    {
        ArgumentNullException.ThrowIfNull(grads);
        if (!(maxNorm > 0) || double.IsInfinity(maxNorm))
            throw new ArgumentException($"gradient_clipping (max norm) must be a positive finite number, got {maxNorm}.", nameof(maxNorm));
        var list = grads as IReadOnlyList<Tensor?> ?? grads.ToList();
        var norm = precomputedNorm ?? GlobalNorm(list);
        var coefficient = maxNorm / (norm + 1e-6);
        // DeepSpeed: clip_coef = min(1, coef); grads *= clip_coef. Multiplying by exactly 1 is skipped; NaN propagates.
        if (coefficient >= 1) return norm;
        using var _ = no_grad();
        foreach (var g in list) g?.mul_(coefficient);
        return norm;
    }
}
