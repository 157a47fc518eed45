using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Training;

/// <summary>A piece of this rank's gradient: the parameter it belongs to and the gradient elements held for it.</summary>
internal readonly record struct GradientPiece(Parameter Owner, Tensor Grad);

/// <summary>
/// What gradients need on a model-parallel topology before the optimizer step. <b>Sequence-parallel parameters</b>
/// (replicated across the tensor ranks, each of which saw only its part of the sequence) have their gradients summed
/// over the tensor group, as Megatron's <c>allreduce_sequence_parallel_grads</c>. <b>The global gradient norm</b> is
/// assembled as DeepSpeed does with an mpu: every rank sums the squares
/// of the gradient elements it holds that count — tensor-parallel slices on every tensor rank, replicated parameters
/// (including those marked sequence-parallel) on tensor rank 0 only — then the sums are added over the partition group
/// (ZeRO's data-parallel partitions) and over the model-parallel group (pipeline stages × tensor ranks). Every rank of
/// the job ends with the same norm, so overflow and clipping decisions agree everywhere.
/// </summary>
internal sealed class ModelParallelGradients
{
    /// <summary>No model parallelism: every element counts and nothing is added across model-parallel ranks.</summary>
    public static ModelParallelGradients DataParallelOnly { get; } = new(null, null, 0);

    /// <param name="modelParallelGroup">The group the squared norms are summed over after the partition group.</param>
    /// <param name="tensorGroup">The tensor-parallel group.</param>
    /// <param name="tensorParallelRank">This rank's tensor-parallel rank.</param>
    /// <param name="pipelined">True with several pipeline stages: copies of tied weights (<see cref="ParallelParameterExtensions.IsPipeReplicated"/>) are then left out of the norm.</param>
    public ModelParallelGradients(ProcessGroup? modelParallelGroup, ProcessGroup? tensorGroup, int tensorParallelRank, bool pipelined = false)
    {
        Pipelined = pipelined;
        ModelParallelGroup = modelParallelGroup is { Size: > 1 } ? modelParallelGroup : null;
        TensorGroup = tensorGroup is { Size: > 1 } ? tensorGroup : null;
        TensorParallelRank = tensorParallelRank;
    }

    /// <summary>From the job's layout (<see cref="DataParallelOnly"/> without model parallelism).</summary>
    public static ModelParallelGradients From(ParallelLayout layout) =>
        layout.ModelParallelGroup == null ? DataParallelOnly
            : new ModelParallelGradients(layout.ModelParallelGroup, layout.Tensor.Group, layout.TensorParallelRank, layout.PipelineParallelSize > 1);

    /// <summary>True with several pipeline stages (tied-weight copies do not count in the norm).</summary>
    public bool Pipelined { get; }

    /// <summary>The tensor-parallel group; null when it has one rank.</summary>
    public ProcessGroup? TensorGroup { get; }

    /// <summary>The group the squared norms are summed over after the partition group; null when it has one rank.</summary>
    public ProcessGroup? ModelParallelGroup { get; }

    /// <summary>This rank's tensor-parallel rank.</summary>
    public int TensorParallelRank { get; }

    /// <summary>
    /// Prepares this rank's gradient for the step and returns its share of the squared global norm: sums the
    /// sequence-parallel <paramref name="pieces"/> over the tensor group, then squares the pieces that count. A strategy
    /// describes its gradient as pieces, one per parameter it holds (in the same order on every tensor rank). Each piece
    /// is normed on its own in fp32, as torch's <c>clip_grad_norm_</c> norms each gradient, and the squares are added in
    /// fp64: one fp32 reduction over a whole flat partition of a million elements or more loses digits that torch keeps.
    /// </summary>
    public double PrepareAndSquare(Func<IEnumerable<GradientPiece>> pieces)
    {
        using var scope = NewDisposeScope();
        var list = pieces().ToList();
        if (TensorGroup != null) ReduceSequenceParallel(list.Where(p => p.Owner.IsSequenceParallel()).Select(p => p.Grad).ToList());
        return GradientClipping.SumOfSquares(list.Where(p => p.Owner.CountsInGlobalNorm(TensorParallelRank)).Select(p => p.Grad));
    }

    /// <summary>Sums <paramref name="views"/> over the tensor group, in place, with one all-reduce.</summary>
    private void ReduceSequenceParallel(IReadOnlyList<Tensor> views)
    {
        if (TensorGroup == null || views.Count == 0) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var packed = cat(views.Select(v => v.reshape(-1)).ToList(), 0);
        TensorGroup.AllReduce(packed, ReduceOp.Sum);
        long offset = 0;
        foreach (var v in views)
        {
            v.copy_(packed.narrow(0, offset, v.numel()).view(v.shape));
            offset += v.numel();
        }
    }

    /// <summary>
    /// The global norm from this rank's sum of squares: all-reduced over <paramref name="partitionGroup"/> (when the
    /// gradient is partitioned across it) and then over the model-parallel group, in fp64.
    /// </summary>
    public double Finish(double localSquares, ProcessGroup? partitionGroup, Device commDevice)
    {
        if (partitionGroup is not { Size: > 1 } && ModelParallelGroup == null) return Math.Sqrt(localSquares);
        using var sq = tensor(new[] { localSquares }, ScalarType.Float64).to(commDevice);
        if (partitionGroup is { Size: > 1 }) partitionGroup.AllReduce(sq, ReduceOp.Sum);
        ModelParallelGroup?.AllReduce(sq, ReduceOp.Sum);
        return Math.Sqrt(sq.to(CPU).item<double>());
    }
}
