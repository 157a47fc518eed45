using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>The tensor operations under the regions: all-reduce, split, all-gather and reduce-scatter along a dimension.</summary>
internal static class RegionOps
{
    /// <summary>A new tensor holding the element-wise sum of <paramref name="x"/> over the group.</summary>
    public static Tensor AllReduce(Tensor x, ProcessGroup group)
    {
        var sum = x.contiguous().clone();
        group.AllReduce(sum, ReduceOp.Sum);
        return sum;
    }

    /// <summary>This rank's chunk of <paramref name="x"/> along <paramref name="dim"/> (a copy).</summary>
    public static Tensor Split(Tensor x, ProcessGroup group, int dim)
    {
        dim = Normalize(x, dim);
        CheckDivisible(x, group, dim, "split");
        long n = x.shape[dim] / group.Size;
        using var view = x.narrow(dim, group.Rank * n, n);
        return view.contiguous().clone();
    }

    /// <summary>The chunks of every rank concatenated along <paramref name="dim"/>, in rank order.</summary>
    public static Tensor Gather(Tensor x, ProcessGroup group, int dim)
    {
        dim = Normalize(x, dim);
        using var scope = NewDisposeScope();
        var input = x.contiguous();
        var flat = empty(input.numel() * group.Size, input.dtype, input.device);
        group.AllGather(flat, input.reshape(-1));
        var shape = new long[] { group.Size }.Concat(input.shape).ToArray();
        var chunks = flat.view(shape).unbind(0);
        return cat(chunks, dim).MoveToOuterDisposeScope();
    }

    /// <summary>The sum over the group of <paramref name="x"/>, of which this rank keeps its chunk along <paramref name="dim"/>.</summary>
    public static Tensor ReduceScatter(Tensor x, ProcessGroup group, int dim)
    {
        dim = Normalize(x, dim);
        CheckDivisible(x, group, dim, "reduce-scatter");
        using var scope = NewDisposeScope();
        var chunks = x.chunk(group.Size, dim);
        var packed = cat(chunks.Select(c => c.contiguous().reshape(-1)).ToList(), 0);
        var shape = x.shape.ToArray();
        shape[dim] /= group.Size;
        var output = empty(shape, x.dtype, x.device);
        group.ReduceScatter(output.view(-1), packed, ReduceOp.Sum);
        return output.MoveToOuterDisposeScope();
    }

    private static int Normalize(Tensor x, int dim) => dim < 0 ? dim + (int)x.dim() : dim;

    private static void CheckDivisible(Tensor x, ProcessGroup group, int dim, string what)
    {
        if (x.shape[dim] % group.Size != 0)
            throw new ArgumentException($"tensor-parallel {what}: dimension {dim} of a [{string.Join(", ", x.shape)}] tensor does not divide into {group.Size} ranks " +
                                        "(with sequence parallelism the sequence length must be a multiple of the tensor-parallel size)");
    }
}
