using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// This rank's place in the tensor-parallel group of an mpu (<c>get_tensor_model_parallel_*</c>), as the parallel layers
/// and activation checkpointing's partitioning need it.
/// </summary>
/// <param name="Group">The tensor-parallel group (null with one rank).</param>
/// <param name="Rank">This rank's tensor-parallel rank.</param>
/// <param name="Size">Ranks in the tensor-parallel group.</param>
internal sealed record TensorParallelContext(ProcessGroup? Group, int Rank, int Size)
{
    /// <summary>One rank, no communication.</summary>
    public static TensorParallelContext Single { get; } = new(null, 0, 1);

    /// <summary>From an mpu (null: <see cref="Single"/>).</summary>
    public static TensorParallelContext From(IModelParallelUnit? mpu)
    {
        if (mpu == null) return Single;
        int size = mpu.GetTensorModelParallelWorldSize(), rank = mpu.GetTensorModelParallelRank();
        if (size < 1) throw new ArgumentException($"the mpu reports tensor-parallel world size {size}; it must be at least 1.");
        if (rank < 0 || rank >= size) throw new ArgumentException($"the mpu reports tensor-parallel rank {rank}, outside 0..{size - 1}.");
        return new TensorParallelContext(size > 1 ? mpu.GetTensorModelParallelGroup() : null, rank, size);
    }

    /// <summary>The per-rank share of <paramref name="total"/>; it must divide evenly.</summary>
    public long Divide(long total, string what)
    {
        if (total % Size != 0)
            throw new ArgumentException($"{what} {total} is not divisible by the tensor-parallel size {Size}");
        return total / Size;
    }
}
