using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// Megatron's <c>ColumnParallelLinear</c>: Y = X·Aᵀ + b with A split by output rows across the tensor-parallel ranks
/// (rank t holds rows [t·out/tp, (t+1)·out/tp) of the weight and bias). Its input is copied into the parallel region
/// (all-reduce of the gradient backward) or, with sequence parallelism, all-gathered along the sequence (reduce-scatter
/// backward). With <c>gatherOutput</c> the output slices are all-gathered along the last dimension; without, each rank
/// keeps its slice (the usual case before a <see cref="RowParallelLinear"/>). The full weight is initialised on every
/// rank by <c>init</c> (default: nn.Linear's) from the same RNG state and sliced, so tp = N starts from the tp = 1 model.
/// The weight and bias are marked tensor-parallel (partition dim 0).
/// </summary>
public sealed class ColumnParallelLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly TensorParallelContext tp;
    private readonly bool gatherOutput, sequenceParallel;
    private readonly int sequenceDim;

    /// <summary>A column-parallel linear layer of the full size <paramref name="inFeatures"/> → <paramref name="outFeatures"/>.</summary>
    /// <param name="inFeatures">Input width (whole on every rank).</param>
    /// <param name="outFeatures">Full output width; must divide by the tensor-parallel size.</param>
    /// <param name="mpu">The topology (null: one rank).</param>
    /// <param name="hasBias">Whether the layer has a bias (zero-initialised, as Megatron's).</param>
    /// <param name="gatherOutput">All-gather the output slices (Megatron's <c>gather_output</c>).</param>
    /// <param name="sequenceParallel">The input is split along the sequence across the tensor ranks (Megatron's <c>sequence_parallel</c>).</param>
    /// <param name="init">Initialiser of the full [out, in] weight; default nn.Linear's.</param>
    /// <param name="sequenceDim">The sequence dimension of the input (1 for batch-first tensors).</param>
    public ColumnParallelLinear(int inFeatures, int outFeatures, IModelParallelUnit? mpu = null, bool hasBias = true, bool gatherOutput = true,
        bool sequenceParallel = false, Action<Tensor>? init = null, int sequenceDim = 1) : base(nameof(ColumnParallelLinear))
    {
        if (sequenceParallel && gatherOutput)
            throw new ArgumentException("ColumnParallelLinear: gatherOutput cannot be combined with sequenceParallel (as in Megatron)");
        tp = TensorParallelContext.From(mpu);
        tp.Divide(outFeatures, "ColumnParallelLinear output size");
        this.gatherOutput = gatherOutput;
        this.sequenceParallel = sequenceParallel;
        this.sequenceDim = sequenceDim;
        weight = ParallelInit.Slice([outFeatures, inFeatures], init ?? ParallelInit.LinearDefault, 0, tp.Rank, tp.Size).MarkTensorModelParallel(partitionDim: 0);
        if (hasBias) bias = ParallelInit.Slice([outFeatures], t => t.zero_(), 0, tp.Rank, tp.Size).MarkTensorModelParallel(partitionDim: 0);
        RegisterComponents();
    }

    /// <summary>This rank's slice of the weight, [out/tp, in].</summary>
    public Parameter Weight => weight;

    /// <summary>This rank's slice of the bias, or null.</summary>
    public Parameter? Bias => bias;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = tp.Group == null ? input
            : sequenceParallel ? TensorParallelRegions.GatherFromSequenceParallelRegion(input, tp.Group, sequenceDim)
            : TensorParallelRegions.CopyToTensorModelParallelRegion(input, tp.Group);
        var y = nn.functional.linear(x, weight, bias);
        if (gatherOutput && tp.Group != null) y = TensorParallelRegions.GatherFromTensorModelParallelRegion(y, tp.Group);
        return y.MoveToOuterDisposeScope();
    }
}
