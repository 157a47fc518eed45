using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// DeepSpeed's "mpu": the object that tells DeepSpeed how the world is split (Megatron's <c>mpu</c> /
/// <c>parallel_state</c> interface). <see cref="DeepSpeed.Initialize"/> takes it as <c>mpu:</c>: ZeRO partitions and
/// reduces over the data-parallel group, the global gradient norm is summed over the model-parallel group, and
/// checkpoint files are named by the model-parallel rank. Activation checkpointing partitions saved inputs across the
/// tensor-parallel group and the RNG tracker seeds from the tensor-parallel rank.
/// <para>"Model parallel" is every kind of model parallelism together (the ranks that hold one replica of the model:
/// pipeline × tensor); "tensor model parallel" is Megatron's tensor slicing alone. A unit that only implements the
/// model-parallel members behaves as DeepSpeed does with an older Megatron mpu: the tensor group is the model group and
/// there is one pipeline stage.</para>
/// </summary>
public interface IModelParallelUnit
{
    /// <summary>The group of ranks holding one model replica (<c>get_model_parallel_group</c>).</summary>
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

    /// <summary>The tensor-parallel group (<c>get_tensor_model_parallel_group</c>); the model-parallel group by default.</summary>
    ProcessGroup GetTensorModelParallelGroup() => GetModelParallelGroup();

    /// <summary>This rank's tensor-parallel rank (<c>get_tensor_model_parallel_rank</c>); the model-parallel rank by default.</summary>
    int GetTensorModelParallelRank() => GetModelParallelRank();

    /// <summary>Ranks per tensor-parallel group (<c>get_tensor_model_parallel_world_size</c>); the model-parallel size by default.</summary>
    int GetTensorModelParallelWorldSize() => GetModelParallelWorldSize();

    /// <summary>The pipeline group (<c>get_pipeline_model_parallel_group</c>): this rank's pipeline, one rank per stage; null without a pipe axis.</summary>
    ProcessGroup? GetPipelineModelParallelGroup() => null;

    /// <summary>This rank's pipeline stage (<c>get_pipeline_model_parallel_rank</c>); 0 by default.</summary>
    int GetPipelineModelParallelRank() => 0;

    /// <summary>Pipeline stages (<c>get_pipeline_model_parallel_world_size</c>); 1 by default.</summary>
    int GetPipelineModelParallelWorldSize() => 1;

    /// <summary>True on the first pipeline stage (<c>is_pipeline_first_stage</c>).</summary>
    bool IsPipelineFirstStage() => GetPipelineModelParallelRank() == 0;

    /// <summary>True on the last pipeline stage (<c>is_pipeline_last_stage</c>).</summary>
    bool IsPipelineLastStage() => GetPipelineModelParallelRank() == GetPipelineModelParallelWorldSize() - 1;
}
