using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// Megatron's <c>RowParallelLinear</c>: Y = X·Aᵀ + b with A split by input columns across the tensor-parallel ranks
/// (rank t holds columns [t·in/tp, (t+1)·in/tp) of the weight). Each rank's partial product is summed over the tensor
/// group (all-reduce) or, with sequence parallelism, reduce-scattered along the sequence; the bias (whole on every rank,
/// marked sequence-parallel when sequence parallelism is on) is added after. With <c>inputIsParallel</c> false the input
/// is first split along its last dimension. The weight is marked tensor-parallel (partition dim 1).
/// </summary>
public sealed class RowParallelLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly TensorParallelContext tp;
    private readonly bool inputIsParallel, sequenceParallel;
    private readonly int sequenceDim;

    /// <summary>A row-parallel linear layer of the full size <paramref name="inFeatures"/> → <paramref name="outFeatures"/>.</summary>
    /// <param name="inFeatures">Full input width; must divide by the tensor-parallel size.</param>
    /// <param name="outFeatures">Output width (whole on every rank).</param>
    /// <param name="mpu">The topology (null: one rank).</param>
    /// <param name="hasBias">Whether the layer has a bias (zero-initialised, as Megatron's).</param>
    /// <param name="inputIsParallel">The input is already split along its last dimension (Megatron's <c>input_is_parallel</c>).</param>
    /// <param name="sequenceParallel">Reduce-scatter the output along the sequence instead of all-reducing it.</param>
    /// <param name="init">Initialiser of the full [out, in] weight; default nn.Linear's.</param>
    /// <param name="sequenceDim">The sequence dimension of the output (1 for batch-first tensors).</param>
    public RowParallelLinear(int inFeatures, int outFeatures, IModelParallelUnit? mpu = null, bool hasBias = true, bool inputIsParallel = true,
        bool sequenceParallel = false, Action<Tensor>? init = null, int sequenceDim = 1) : base(nameof(RowParallelLinear))
    {
        if (sequenceParallel && !inputIsParallel)
            throw new ArgumentException("RowParallelLinear: sequenceParallel needs inputIsParallel (as in Megatron)");
        tp = TensorParallelContext.From(mpu);
        tp.Divide(inFeatures, "RowParallelLinear input size");
        this.inputIsParallel = inputIsParallel;
        this.sequenceParallel = sequenceParallel;
        this.sequenceDim = sequenceDim;
        weight = ParallelInit.Slice([outFeatures, inFeatures], init ?? ParallelInit.LinearDefault, 1, tp.Rank, tp.Size).MarkTensorModelParallel(partitionDim: 1);
        if (hasBias)
        {
            bias = ParallelInit.Full([outFeatures], t => t.zero_());
            if (sequenceParallel) bias.MarkSequenceParallel();
        }
        RegisterComponents();
    }

    /// <summary>This rank's slice of the weight, [out, in/tp].</summary>
    public Parameter Weight => weight;

    /// <summary>The bias (whole), or null.</summary>
    public Parameter? Bias => bias;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = tp.Group == null || inputIsParallel ? input : TensorParallelRegions.ScatterToTensorModelParallelRegion(input, tp.Group);
        var partial = nn.functional.linear(x, weight);
        var y = tp.Group == null ? partial
            : sequenceParallel ? TensorParallelRegions.ReduceScatterToSequenceParallelRegion(partial, tp.Group, sequenceDim)
            : TensorParallelRegions.ReduceFromTensorModelParallelRegion(partial, tp.Group);
        if (bias is not null) y = y + bias;
        return y.MoveToOuterDisposeScope();
    }
}
