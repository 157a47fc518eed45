using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// Creates a rank's slice of a weight the way Megatron's <c>_initialize_affine_weight_cpu</c> does: every rank builds the
/// full weight with the same initialiser from the same RNG state and keeps its slice, so a tp = N run starts from exactly
/// the slices of the tp = 1 model built from the same seed (at the cost of one full weight per layer while building).
/// </summary>
internal static class ParallelInit
{
    /// <summary>nn.Linear's default initialiser: uniform(-1/√fan_in, 1/√fan_in) (Kaiming uniform with a = √5).</summary>
    public static void LinearDefault(Tensor weight) => nn.init.kaiming_uniform_(weight, Math.Sqrt(5));

    /// <summary>The slice [<paramref name="rank"/>·n, (<paramref name="rank"/>+1)·n) along <paramref name="dim"/> of a full weight
    /// of <paramref name="fullShape"/> initialised by <paramref name="init"/>, as a parameter.</summary>
    public static Parameter Slice(long[] fullShape, Action<Tensor> init, int dim, int rank, int size)
    {
        if (size == 1) return Full(fullShape, init); // the whole weight, without a second copy of it
        using var scope = NewDisposeScope();
        var full = empty(fullShape, ScalarType.Float32);
        using (no_grad()) init(full);
        long n = fullShape[dim] / size;
        var slice = full.narrow(dim, rank * n, n).contiguous().clone();
        return new Parameter(slice.DetachFromDisposeScope());
    }

    /// <summary>A full (replicated) parameter initialised by <paramref name="init"/>.</summary>
    public static Parameter Full(long[] shape, Action<Tensor> init)
    {
        var t = empty(shape, ScalarType.Float32).DetachFromDisposeScope();
        using (no_grad()) init(t);
        return new Parameter(t);
    }
}
