using DeepSpeedSharp.TensorParallel;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// The one place the model gets its parameterised layers and its loss from: every projection, the embedding, the LM
/// head, the norms and the cross-entropy are built here, from DeepSpeedSharp's Megatron-style tensor-parallel layers
/// over the mpu's tensor group (plain layers when the tensor-parallel size is 1).
/// <para>Every weight is created whole on every rank, drawn from the global torch RNG as N(0, 0.02) — one
/// <c>normal_</c> over the full [out, in] (or [vocab, dim]) tensor and nothing else — and each rank keeps its slice, so
/// a tp = N model built after the same seed is exactly the slices of the tp = 1 model. No layer has a bias.</para>
/// <para><see cref="ColumnLinear"/> splits the output features (q/k/v, gate/up, the LM head), <see cref="RowLinear"/>
/// the input features (attention output, down projection), <see cref="Embedding"/> the vocabulary, and
/// <see cref="CrossEntropy"/> takes the vocabulary-parallel logits without gathering them. With sequence parallelism
/// the residual stream is split along the sequence: column layers all-gather it, row layers and the embedding
/// reduce-scatter into it, and the norms (working on a sequence slice) are marked sequence-parallel so that their
/// gradients are summed over the tensor group.</para>
/// </summary>
public sealed class LlamaLayers
{
    private const double InitStd = 0.02;
    private readonly IModelParallelUnit? mpu;
    private readonly int tensorParallelSize, tensorParallelRank;
    private readonly Zero.ZeroInit? zeroInit;

    /// <summary>Layers for the tensor group of <paramref name="mpu"/> (null: one rank), with or without sequence parallelism.</summary>
    /// <param name="mpu">The topology (null: one rank).</param>
    /// <param name="sequenceParallel">Megatron's sequence parallelism.</param>
    /// <param name="zeroInit">ZeRO-3's zero.Init: each layer keeps only this rank's partition of its (slices of) weights
    /// as soon as it is built, so the whole model never sits on one rank.</param>
    public LlamaLayers(IModelParallelUnit? mpu = null, bool sequenceParallel = false, Zero.ZeroInit? zeroInit = null)
    {
        this.mpu = mpu;
        this.zeroInit = zeroInit;
        tensorParallelSize = mpu?.GetTensorModelParallelWorldSize() ?? 1;
        tensorParallelRank = mpu?.GetTensorModelParallelRank() ?? 0;
        SequenceParallel = sequenceParallel && tensorParallelSize > 1;
    }

    /// <summary>True when the residual stream is split along the sequence across the tensor ranks.</summary>
    public bool SequenceParallel { get; }

    /// <summary>Ranks in the tensor-parallel group.</summary>
    public int TensorParallelSize => tensorParallelSize;

    /// <summary>
    /// A linear layer whose output features are split across the tensor-parallel ranks (Megatron's
    /// <c>ColumnParallelLinear</c>): the q, k and v projections, the MLP's gate and up projections and the LM head.
    /// </summary>
    /// <param name="inFeatures">Input features (whole on every rank).</param>
    /// <param name="outFeatures">Output features of the whole layer.</param>
    /// <param name="gatherOutput">Whether the output slices are gathered into the whole output (false for layers
    /// whose consumer works on the slice: attention heads, the SwiGLU product, vocabulary-parallel logits).</param>
    public nn.Module<Tensor, Tensor> ColumnLinear(int inFeatures, int outFeatures, bool gatherOutput) => Built(
        new ColumnParallelLinear(inFeatures, outFeatures, mpu, hasBias: false, gatherOutput: gatherOutput && !SequenceParallel,
            sequenceParallel: SequenceParallel, init: Normal));

    /// <summary>
    /// A linear layer whose input features are split across the tensor-parallel ranks and whose output is summed over
    /// them (Megatron's <c>RowParallelLinear</c> with <c>input_is_parallel</c>): the attention output projection and
    /// the MLP's down projection.
    /// </summary>
    /// <param name="inFeatures">Input features of the whole layer.</param>
    /// <param name="outFeatures">Output features (whole on every rank).</param>
    public nn.Module<Tensor, Tensor> RowLinear(int inFeatures, int outFeatures) => Built(
        new RowParallelLinear(inFeatures, outFeatures, mpu, hasBias: false, inputIsParallel: true, sequenceParallel: SequenceParallel, init: Normal));

    /// <summary>The token embedding (Megatron's <c>VocabParallelEmbedding</c>): [vocab, dim], N(0, 0.02).</summary>
    /// <param name="vocab">Rows: the padded vocabulary size (divisible by the tensor-parallel size).</param>
    /// <param name="dim">Columns: the hidden size.</param>
    public nn.Module<Tensor, Tensor> Embedding(int vocab, int dim) => Built(
        new VocabParallelEmbedding(vocab, dim, mpu, sequenceParallel: SequenceParallel, init: Normal));

    /// <summary>An RMSNorm over the hidden size, marked sequence-parallel when the residual stream is sequence-split.</summary>
    public RmsNorm Norm(int dim, double eps)
    {
        var norm = new RmsNorm(dim, eps);
        if (SequenceParallel) norm.Weight.MarkSequenceParallel();
        return Built(norm);
    }

    /// <summary>A freshly built (and initialised) layer, partitioned by zero.Init when it is on.</summary>
    private T Built<T>(T module) where T : nn.Module => zeroInit is null ? module : zeroInit.Partition(module);

    /// <summary>
    /// The mean token cross-entropy, computed in fp32 whatever dtype the model computes in, from this rank's
    /// vocabulary slice of the logits (Megatron's <c>vocab_parallel_cross_entropy</c> followed by the mean).
    /// </summary>
    /// <param name="logits">[..., vocab / tp] logits.</param>
    /// <param name="targets">[...] token ids (int64), the same leading shape as <paramref name="logits"/>.</param>
    /// <returns>A scalar fp32 tensor.</returns>
    public Tensor CrossEntropy(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var group = tensorParallelSize > 1 ? mpu!.GetTensorModelParallelGroup() : null;
        return TensorParallelRegions.VocabParallelCrossEntropy(logits, targets, group, tensorParallelRank * logits.shape[^1])
            .mean().MoveToOuterDisposeScope();
    }

    /// <summary>How many of <paramref name="heads"/> attention heads each tensor-parallel rank runs: heads / tp.</summary>
    /// <exception cref="ArgumentException">The tensor-parallel size does not divide <paramref name="heads"/>.</exception>
    public int HeadsPerRank(int heads)
    {
        if (heads < 1 || heads % tensorParallelSize != 0)
            throw new ArgumentException($"the tensor-parallel size {tensorParallelSize} must divide the number of heads, got {heads}");
        return heads / tensorParallelSize;
    }

    /// <summary>
    /// The RNG stream for dropout on tensor-split activations (attention probabilities; with sequence parallelism, the
    /// residual dropout too): the model-parallel stream of <c>DeepSpeed.Checkpointing.GetRngTracker()</c>, different on
    /// each tensor rank. Null (the default stream) with one tensor rank.
    /// </summary>
    public IDisposable? ParallelRegionRng() => tensorParallelSize > 1 ? DeepSpeed.Checkpointing.GetRngTracker().Fork() : null;

    private static void Normal(Tensor weight) => nn.init.normal_(weight, 0.0, InitStd);
}
