using DeepSpeedSharp.Comm;

using DeepSpeedSharp.Topology;

namespace DeepSpeedSharp.Checkpointing;

/// <summary>The tensor-parallel group checkpointing partitions saved activations across (size 1 without an mpu), as DeepSpeed takes it from <c>get_tensor_model_parallel_*</c>.</summary>
internal sealed record ModelParallelContext(ProcessGroup? Group, int Rank, int Size)
{
    public static ModelParallelContext Single { get; } = new(null, 0, 1);

    public static ModelParallelContext From(IModelParallelUnit? mpu)
    {
        if (mpu == null) return Single;
        int size = mpu.GetTensorModelParallelWorldSize(), rank = mpu.GetTensorModelParallelRank();
        if (size < 1) throw new ArgumentException($"the mpu reports tensor-parallel world size {size}; it must be at least 1.");
        if (rank < 0 || rank >= size) throw new ArgumentException($"the mpu reports tensor-parallel rank {rank}, outside 0..{size - 1}.");
        return new ModelParallelContext(size > 1 ? mpu.GetTensorModelParallelGroup() : null, rank, size);
    }
}
