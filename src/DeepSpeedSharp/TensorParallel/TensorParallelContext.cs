using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>This rank's place in the tensor-parallel group, as the parallel layers need it.</summary>
/// <param name="Group">The tensor-parallel group (null with one rank).</param>
/// <param name="Rank">This rank's tensor-parallel rank.</param>
/// <param name="Size">Ranks in the tensor-parallel group.</param>
internal sealed record TensorParallelContext(ProcessGroup? Group, int Rank, int Size)
{
    /// <summary>From an mpu (null: one rank, no communication).</summary>
    public static TensorParallelContext From(IModelParallelUnit? mpu)
    {
        if (mpu == null) return new(null, 0, 1);
        int size = mpu.GetTensorModelParallelWorldSize(), rank = mpu.GetTensorModelParallelRank();
        return new(size > 1 ? mpu.GetTensorModelParallelGroup() : null, rank, size);
    }

    /// <summary>The per-rank share of <paramref name="total"/>; it must divide evenly.</summary>
    public long Divide(long total, string what)
    {
        if (total % Size != 0)
            throw new ArgumentException($"{what} {total} is not divisible by the tensor-parallel size {Size}");
        return total / Size;
    }
}
