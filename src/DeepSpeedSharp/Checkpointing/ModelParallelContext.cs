using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Checkpointing;

/// <summary>The model-parallel group checkpointing partitions across (size 1 without an mpu).</summary>
internal sealed record ModelParallelContext(ProcessGroup? Group, int Rank, int Size)
{
    public static ModelParallelContext Single { get; } = new(null, 0, 1);

    public static ModelParallelContext From(IModelParallelUnit? mpu)
    {
        if (mpu == null) return Single;
        int size = mpu.GetModelParallelWorldSize(), rank = mpu.GetModelParallelRank();
        if (size < 1) throw new ArgumentException($"the mpu reports model-parallel world size {size}; it must be at least 1.");
        if (rank < 0 || rank >= size) throw new ArgumentException($"the mpu reports model-parallel rank {rank}, outside 0..{size - 1}.");
        return new ModelParallelContext(size > 1 ? mpu.GetModelParallelGroup() : null, rank, size);
    }
}
