using System.Runtime.CompilerServices;
using TorchSharp.Modules;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// How a parameter is laid out across the tensor-parallel group — the .NET form of Megatron's Python attributes
/// (<c>set_tensor_model_parallel_attributes(weight, True, dim, stride)</c>, <c>setattr(weight, 'sequence_parallel', True)</c>).
/// </summary>
/// <param name="TensorModelParallel">True when each tensor rank holds a different slice (Megatron's <c>tensor_model_parallel</c>).</param>
/// <param name="PartitionDim">The dimension the full weight is split along (0 for column-parallel, 1 for row-parallel); -1 when not split.</param>
/// <param name="PartitionStride">Megatron's <c>partition_stride</c>.</param>
/// <param name="SequenceParallel">True for a parameter used inside the sequence-parallel region (replicated across tensor ranks,
/// whose gradient must be summed over the tensor group).</param>
/// <param name="PipeReplicated">True for a copy of a weight tied across pipeline stages held by a stage other than the tie's
/// first (DeepSpeed's <c>ds_pipe_replicated</c>): it counts once in global quantities such as the gradient norm.</param>
public sealed record ParallelAttributes(bool TensorModelParallel, int PartitionDim, int PartitionStride, bool SequenceParallel, bool PipeReplicated = false)
{
    /// <summary>A replicated parameter (no attribute set).</summary>
    public static ParallelAttributes Replicated { get; } = new(false, -1, 1, false);
}

/// <summary>
/// Attaches <see cref="ParallelAttributes"/> to parameters, as Megatron sets attributes on tensors. The attributes live
/// with the <see cref="Parameter"/> object (a weak table: nothing is kept alive); <see cref="DeepSpeed.Initialize"/> carries
/// them over when it converts the model to bf16/fp16, which replaces the parameter objects. Mark parameters when the
/// module is built, e.g. <c>weight.MarkTensorModelParallel(partitionDim: 0)</c> in a column-parallel layer's constructor.
/// </summary>
public static class ParallelParameterExtensions
{
    private static readonly ConditionalWeakTable<Parameter, ParallelAttributes> Table = new();

    /// <summary>Marks <paramref name="parameter"/> as a tensor-parallel slice split along <paramref name="partitionDim"/> (Megatron's
    /// <c>set_tensor_model_parallel_attributes(tensor, True, dim, stride)</c>). Returns the parameter.</summary>
    public static Parameter MarkTensorModelParallel(this Parameter parameter, int partitionDim, int partitionStride = 1)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (partitionDim < 0 || partitionDim >= Math.Max(1, parameter.dim()))
            throw new ArgumentOutOfRangeException(nameof(partitionDim), $"partition dimension {partitionDim} is outside the parameter's {parameter.dim()} dimensions");
        if (partitionStride < 1) throw new ArgumentOutOfRangeException(nameof(partitionStride), $"partition stride {partitionStride} must be at least 1");
        Set(parameter, parameter.GetParallelAttributes() with { TensorModelParallel = true, PartitionDim = partitionDim, PartitionStride = partitionStride });
        return parameter;
    }

    /// <summary>Marks <paramref name="parameter"/> as used in the sequence-parallel region (Megatron's
    /// <c>setattr(weight, 'sequence_parallel', True)</c>). Returns the parameter.</summary>
    public static Parameter MarkSequenceParallel(this Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        Set(parameter, parameter.GetParallelAttributes() with { SequenceParallel = true });
        return parameter;
    }

    /// <summary>Marks <paramref name="parameter"/> as another stage's copy of a pipeline-tied weight (DeepSpeed's
    /// <c>ds_pipe_replicated</c>); the pipeline module does this for every tied weight outside the tie's first stage.</summary>
    internal static Parameter MarkPipeReplicated(this Parameter parameter)
    {
        Set(parameter, parameter.GetParallelAttributes() with { PipeReplicated = true });
        return parameter;
    }

    /// <summary>True for another stage's copy of a pipeline-tied weight (DeepSpeed's <c>ds_pipe_replicated</c>).</summary>
    public static bool IsPipeReplicated(this Parameter parameter) => parameter.GetParallelAttributes().PipeReplicated;

    /// <summary>
    /// True when this rank's copy counts in the global gradient norm: not a tensor-parallel duplicate
    /// (<see cref="IsNotTensorParallelDuplicate"/>) and not another stage's copy of a tied weight (as DeepSpeed's
    /// <c>clip_grad_norm_</c> skips <c>ds_pipe_replicated</c> parameters).
    /// </summary>
    public static bool CountsInGlobalNorm(this Parameter parameter, int tensorParallelRank) =>
        parameter.IsNotTensorParallelDuplicate(tensorParallelRank) && !parameter.IsPipeReplicated();

    /// <summary>The parameter's attributes (<see cref="ParallelAttributes.Replicated"/> when none were set).</summary>
    public static ParallelAttributes GetParallelAttributes(this Parameter parameter) =>
        Table.TryGetValue(parameter, out var a) ? a : ParallelAttributes.Replicated;

    /// <summary>True for a tensor-parallel slice (Megatron's <c>param.tensor_model_parallel</c>).</summary>
    public static bool IsTensorModelParallel(this Parameter parameter) => parameter.GetParallelAttributes().TensorModelParallel;

    /// <summary>True for a parameter marked <see cref="MarkSequenceParallel"/>.</summary>
    public static bool IsSequenceParallel(this Parameter parameter) => parameter.GetParallelAttributes().SequenceParallel;

    /// <summary>
    /// Megatron's <c>param_is_not_tensor_parallel_duplicate</c>: true when this rank's copy counts in a global quantity such
    /// as the gradient norm — tensor-parallel slices on every tensor rank, replicated parameters on tensor rank 0 only.
    /// </summary>
    public static bool IsNotTensorParallelDuplicate(this Parameter parameter, int tensorParallelRank) =>
        parameter.IsTensorModelParallel() || tensorParallelRank == 0;

    /// <summary>Sets all attributes at once (to carry them over when a dtype conversion replaced the parameter object).</summary>
    internal static void SetParallelAttributes(this Parameter parameter, ParallelAttributes attributes)
    {
        if (attributes != ParallelAttributes.Replicated) Set(parameter, attributes);
    }

    private static void Set(Parameter parameter, ParallelAttributes attributes) => Table.AddOrUpdate(parameter, attributes);
}
