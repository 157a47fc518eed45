using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// The communication regions of Megatron-style tensor and sequence parallelism, as differentiable operations over the
/// tensor-parallel group (an mpu's <c>GetTensorModelParallelGroup()</c>). Each is a small autograd function; with a
/// group of one rank every region is an identity. Tensors are batch-first (<c>[batch, sequence, hidden]</c>), so the
/// sequence dimension defaults to 1 (Megatron's layout is sequence-first).
/// </summary>
public static class TensorParallelRegions
{
    /// <summary>Identity forward, all-reduce of the gradient backward (<c>copy_to_tensor_model_parallel_region</c>): the
    /// input of a column-parallel layer.</summary>
    public static Tensor CopyToTensorModelParallelRegion(Tensor input, ProcessGroup tensorGroup) =>
        Single(tensorGroup, input) ? input.alias() : CopyToRegion.apply(input, tensorGroup);

    /// <summary>All-reduce forward, identity backward (<c>reduce_from_tensor_model_parallel_region</c>): the output of a
    /// row-parallel layer.</summary>
    public static Tensor ReduceFromTensorModelParallelRegion(Tensor input, ProcessGroup tensorGroup) =>
        Single(tensorGroup, input) ? input.alias() : ReduceFromRegion.apply(input, tensorGroup);

    /// <summary>Keep this rank's chunk of the last dimension forward, all-gather backward (<c>scatter_to_tensor_model_parallel_region</c>).</summary>
    public static Tensor ScatterToTensorModelParallelRegion(Tensor input, ProcessGroup tensorGroup) =>
        Single(tensorGroup, input) ? input.alias() : ScatterToRegion.apply(input, tensorGroup, -1);

    /// <summary>All-gather along the last dimension forward, split backward (<c>gather_from_tensor_model_parallel_region</c>).</summary>
    public static Tensor GatherFromTensorModelParallelRegion(Tensor input, ProcessGroup tensorGroup) =>
        Single(tensorGroup, input) ? input.alias() : GatherFromRegion.apply(input, tensorGroup, -1);

    /// <summary>Keep this rank's chunk of the sequence forward, all-gather backward (<c>scatter_to_sequence_parallel_region</c>).</summary>
    public static Tensor ScatterToSequenceParallelRegion(Tensor input, ProcessGroup tensorGroup, int sequenceDim = 1) =>
        Single(tensorGroup, input) ? input.alias() : ScatterToRegion.apply(input, tensorGroup, sequenceDim);

    /// <summary>All-gather along the sequence forward, reduce-scatter backward (<c>gather_from_sequence_parallel_region</c>):
    /// the input of a column-parallel layer under sequence parallelism.</summary>
    public static Tensor GatherFromSequenceParallelRegion(Tensor input, ProcessGroup tensorGroup, int sequenceDim = 1) =>
        Single(tensorGroup, input) ? input.alias() : GatherFromSequenceRegion.apply(input, tensorGroup, sequenceDim);

    /// <summary>Reduce-scatter along the sequence forward, all-gather backward (<c>reduce_scatter_to_sequence_parallel_region</c>):
    /// the output of a row-parallel layer under sequence parallelism.</summary>
    public static Tensor ReduceScatterToSequenceParallelRegion(Tensor input, ProcessGroup tensorGroup, int sequenceDim = 1) =>
        Single(tensorGroup, input) ? input.alias() : ReduceScatterToSequenceRegion.apply(input, tensorGroup, sequenceDim);

    /// <summary>
    /// Megatron's <c>vocab_parallel_cross_entropy</c>: the per-token cross-entropy of <paramref name="logitsParallel"/>
    /// ([..., V/tp], this rank's vocabulary slice, as a column-parallel LM head without gatherOutput produces) against
    /// <paramref name="targets"/> (full-vocabulary ids, shape [...]), computed in fp32 without ever gathering the full
    /// logits on one rank. <paramref name="vocabStart"/> is the first id of this rank's slice (rank × V/tp). Returns the
    /// loss of every token (reduce it yourself, e.g. <c>.mean()</c>).
    /// </summary>
    public static Tensor VocabParallelCrossEntropy(Tensor logitsParallel, Tensor targets, ProcessGroup? tensorGroup, long vocabStart)
    {
        ArgumentNullException.ThrowIfNull(logitsParallel);
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = NewDisposeScope();
        var logits = logitsParallel.to(ScalarType.Float32).reshape(-1, logitsParallel.shape[^1]);
        var flatTargets = targets.reshape(-1).to(ScalarType.Int64);
        if (flatTargets.shape[0] != logits.shape[0])
            throw new ArgumentException($"VocabParallelCrossEntropy: {logits.shape[0]} rows of logits but {flatTargets.shape[0]} targets");
        var group = tensorGroup is { Size: > 1 } ? tensorGroup : null;
        var loss = VocabParallelCrossEntropyFunction.apply(logits, flatTargets, group!, vocabStart);
        return loss.view(targets.shape).MoveToOuterDisposeScope();
    }

    private static bool Single(ProcessGroup group, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(group);
        return group.Size == 1;
    }
}
