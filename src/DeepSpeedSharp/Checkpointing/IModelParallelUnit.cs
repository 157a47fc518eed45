using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Checkpointing;

/// <summary>
/// DeepSpeed's "mpu": the object that tells DeepSpeed how the world is split into model-parallel (tensor-parallel)
/// and data-parallel groups (Megatron's <c>mpu</c> module, DeepSpeed's <c>get_model_parallel_*</c> /
/// <c>get_data_parallel_*</c>). Activation checkpointing partitions saved inputs across the model-parallel group
/// and seeds the model-parallel RNG from the model-parallel rank.
/// </summary>
public interface IModelParallelUnit
{
    /// <summary>The model-parallel group this rank belongs to (<c>get_model_parallel_group</c>).</summary>
    ProcessGroup GetModelParallelGroup();

    /// <summary>This rank's position in its model-parallel group (<c>get_model_parallel_rank</c>).</summary>
    int GetModelParallelRank();

    /// <summary>Ranks per model-parallel group (<c>get_model_parallel_world_size</c>).</summary>
    int GetModelParallelWorldSize();

    /// <summary>The data-parallel group this rank belongs to (<c>get_data_parallel_group</c>).</summary>
    ProcessGroup GetDataParallelGroup();

    /// <summary>This rank's position in its data-parallel group (<c>get_data_parallel_rank</c>).</summary>
    int GetDataParallelRank();

    /// <summary>Ranks per data-parallel group (<c>get_data_parallel_world_size</c>).</summary>
    int GetDataParallelWorldSize();
}
