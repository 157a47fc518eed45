using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// The communication regions of Megatron-style tensor parallelism, as differentiable operations over the
/// tensor-parallel group (an mpu's <c>GetTensorModelParallelGroup()</c>). With a group of one rank they are identities.
/// </summary>
public static class TensorParallelRegions
{
    /// <summary>Identity forward, all-reduce of the gradient in backward (<c>copy_to_tensor_model_parallel_region</c>):
    /// put it on the input of a column-parallel layer.</summary>
    public static Tensor CopyToTensorModelParallelRegion(Tensor input, ProcessGroup tensorGroup)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(tensorGroup);
        return tensorGroup.Size == 1 ? input.alias() : CopyToTensorParallelRegion.apply(input, tensorGroup);
    }

    /// <summary>All-reduce forward, identity backward (<c>reduce_from_tensor_model_parallel_region</c>): put it on the
    /// output of a row-parallel layer.</summary>
    public static Tensor ReduceFromTensorModelParallelRegion(Tensor input, ProcessGroup tensorGroup)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(tensorGroup);
        return tensorGroup.Size == 1 ? input.alias() : ReduceFromTensorParallelRegion.apply(input, tensorGroup);
    }
}
