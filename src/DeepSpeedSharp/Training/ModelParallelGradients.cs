using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Training;

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

    public ModelParallelGradients(ProcessGroup? modelParallelGroup, ProcessGroup? tensorGroup, int tensorParallelRank)
    {
        ModelParallelGroup = modelParallelGroup is { Size: > 1 } ? modelParallelGroup : null;
        TensorGroup = tensorGroup is { Size: > 1 } ? tensorGroup : null;
        TensorParallelRank = tensorParallelRank;
    }

    /// <summary>From an mpu (null: <see cref="DataParallelOnly"/>).</summary>
    public static ModelParallelGradients From(IModelParallelUnit? mpu) =>
        mpu == null ? DataParallelOnly : new ModelParallelGradients(mpu.GetModelParallelGroup(), mpu.GetTensorModelParallelGroup(), mpu.GetTensorModelParallelRank());

    /// <summary>The tensor-parallel group; null when it has one rank.</summary>
    public ProcessGroup? TensorGroup { get; }

    /// <summary>True when some of <paramref name="parameters"/> are sequence-parallel and there are several tensor ranks.</summary>
    public bool NeedsSequenceParallelReduction(IEnumerable<Parameter> parameters) => TensorGroup != null && parameters.Any(p => p.IsSequenceParallel());

    /// <summary>
    /// Sums <paramref name="views"/> (this rank's gradient of the sequence-parallel parameters, in an order that is the same
    /// on every tensor rank) over the tensor group, in place, with one all-reduce.
    /// </summary>
    public void ReduceSequenceParallel(IReadOnlyList<Tensor> views)
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

    /// <summary>The group the squared norms are summed over after the partition group; null when it has one rank.</summary>
    public ProcessGroup? ModelParallelGroup { get; }

    /// <summary>This rank's tensor-parallel rank.</summary>
    public int TensorParallelRank { get; }

    /// <summary>True when every local element counts (tensor rank 0, or no tensor parallelism).</summary>
    public bool CountsEverything => TensorParallelRank == 0;

    /// <summary>Whether this rank's copy of <paramref name="parameter"/> counts in the norm.</summary>
    public bool Counts(Parameter parameter) => parameter.IsNotTensorParallelDuplicate(TensorParallelRank);

    /// <summary>Squared L2 norm of a tensor: its norm (in fp32 for 16-bit tensors) squared in fp64.</summary>
    public static double Squares(Tensor t)
    {
        using var scope = NewDisposeScope();
        var x = t.dtype is ScalarType.Float32 or ScalarType.Float64 ? t : t.to(ScalarType.Float32);
        double n = x.norm().to(ScalarType.Float64).item<double>();
        return n * n;
    }

    /// <summary>Sum of squares over the gradients of the parameters that count (null gradients are skipped).</summary>
    public double Squares(IEnumerable<Parameter> parameters)
    {
        double sum = 0;
        foreach (var p in parameters)
            if (p.grad is { } g && Counts(p)) sum += Squares(g);
        return sum;
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
