using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// Megatron's <c>VocabParallelEmbedding</c>: the embedding table split by vocabulary rows across the tensor-parallel
/// ranks (rank t holds ids [t·V/tp, (t+1)·V/tp)). Each rank looks up the ids in its range, zeroes the others, and the
/// partial embeddings are summed over the tensor group — or, with sequence parallelism, reduce-scattered along the
/// sequence. The full table is initialised on every rank (default normal(0, 1), as nn.Embedding) and sliced. The weight
/// is marked tensor-parallel (partition dim 0).
/// </summary>
public sealed class VocabParallelEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly TensorParallelContext tp;
    private readonly long vocabStart, vocabEnd;
    private readonly bool sequenceParallel;
    private readonly int sequenceDim;

    /// <summary>An embedding of <paramref name="numEmbeddings"/> ids (divisible by the tensor-parallel size) into <paramref name="embeddingDim"/>.</summary>
    /// <param name="numEmbeddings">Full vocabulary size.</param>
    /// <param name="embeddingDim">Embedding width.</param>
    /// <param name="mpu">The topology (null: one rank).</param>
    /// <param name="sequenceParallel">Reduce-scatter the output along the sequence (the residual stream is sequence-split).</param>
    /// <param name="init">Initialiser of the full [V, D] table; default normal(0, 1).</param>
    /// <param name="sequenceDim">The sequence dimension of the output (1 for batch-first ids [batch, sequence]).</param>
    public VocabParallelEmbedding(int numEmbeddings, int embeddingDim, IModelParallelUnit? mpu = null, bool sequenceParallel = false,
        Action<Tensor>? init = null, int sequenceDim = 1) : base(nameof(VocabParallelEmbedding))
    {
        tp = TensorParallelContext.From(mpu);
        long perRank = tp.Divide(numEmbeddings, "VocabParallelEmbedding vocabulary size");
        vocabStart = tp.Rank * perRank;
        vocabEnd = vocabStart + perRank;
        this.sequenceParallel = sequenceParallel;
        this.sequenceDim = sequenceDim;
        weight = ParallelInit.Slice([numEmbeddings, embeddingDim], init ?? (t => nn.init.normal_(t)), 0, tp.Rank, tp.Size).MarkTensorModelParallel(partitionDim: 0);
        RegisterComponents();
    }

    /// <summary>This rank's rows of the table, [V/tp, D].</summary>
    public Parameter Weight => weight;

    /// <summary>The first id this rank holds.</summary>
    public long VocabStart => vocabStart;

    /// <inheritdoc/>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        if (tp.Group == null) return weight.index_select(0, ids.reshape(-1)).view([.. ids.shape, weight.shape[1]]).MoveToOuterDisposeScope();
        var outside = ids.lt(vocabStart).logical_or(ids.ge(vocabEnd));
        var local = (ids - vocabStart).masked_fill(outside, 0);
        var partial = weight.index_select(0, local.reshape(-1)).view([.. ids.shape, weight.shape[1]]).masked_fill(outside.unsqueeze(-1), 0.0);
        var y = sequenceParallel
            ? TensorParallelRegions.ReduceScatterToSequenceParallelRegion(partial, tp.Group, sequenceDim)
            : TensorParallelRegions.ReduceFromTensorModelParallelRegion(partial, tp.Group);
        return y.MoveToOuterDisposeScope();
    }
}
