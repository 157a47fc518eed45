using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// The one place the model gets its parameterised layers and its loss from, so that tensor parallelism can be wired
/// in here without touching the model: every projection, the embedding, the LM head and the cross-entropy are built
/// through these members.
/// <para>Today they are plain TorchSharp layers (a tensor-parallel size of 1). Every weight is created whole, drawn
/// from the global torch RNG as N(0, 0.02) — one <c>normal_</c> over the full [out, in] (or [vocab, dim]) tensor and
/// nothing else — so a tensor-parallel replacement that draws the same full tensor on every rank and keeps its slice
/// starts from exactly the same model. No layer has a bias.</para>
/// <para>What a tensor-parallel version would do: <see cref="ColumnLinear"/> splits the output features (each rank
/// computes out / tp of them; with <c>gatherOutput</c> the slices are gathered back), <see cref="RowLinear"/> splits
/// the input features and all-reduces its output, <see cref="Embedding"/> splits the vocabulary, and
/// <see cref="CrossEntropy"/> takes vocabulary-parallel logits. The attention asks <see cref="HeadsPerRank"/> how
/// many of its query and key/value heads this rank's slices of the q/k/v projections hold.</para>
/// </summary>
public sealed class LlamaLayers
{
    private const double InitStd = 0.02;
    private const int TensorParallelSize = 1;

    /// <summary>
    /// A linear layer whose output features are split across the tensor-parallel ranks (Megatron's
    /// <c>ColumnParallelLinear</c>): the q, k and v projections, the MLP's gate and up projections and the LM head.
    /// </summary>
    /// <param name="inFeatures">Input features (whole on every rank).</param>
    /// <param name="outFeatures">Output features of the whole layer.</param>
    /// <param name="gatherOutput">Whether the output slices are gathered into the whole output (false for layers
    /// whose consumer works on the slice: attention heads, the SwiGLU product, vocabulary-parallel logits). With one
    /// rank the output is whole either way.</param>
    public nn.Module<Tensor, Tensor> ColumnLinear(int inFeatures, int outFeatures, bool gatherOutput) =>
        Linear(inFeatures, outFeatures);

    /// <summary>
    /// A linear layer whose input features are split across the tensor-parallel ranks and whose output is summed over
    /// them (Megatron's <c>RowParallelLinear</c> with <c>input_is_parallel</c>): the attention output projection and
    /// the MLP's down projection.
    /// </summary>
    /// <param name="inFeatures">Input features of the whole layer.</param>
    /// <param name="outFeatures">Output features (whole on every rank).</param>
    public nn.Module<Tensor, Tensor> RowLinear(int inFeatures, int outFeatures) => Linear(inFeatures, outFeatures);

    /// <summary>The token embedding (Megatron's <c>VocabParallelEmbedding</c>): [vocab, dim], N(0, 0.02).</summary>
    /// <param name="vocab">Rows: the padded vocabulary size.</param>
    /// <param name="dim">Columns: the hidden size.</param>
    public nn.Module<Tensor, Tensor> Embedding(int vocab, int dim) =>
        Initialised(() => nn.Embedding(vocab, dim), m => m.weight!);

    /// <summary>
    /// The mean token cross-entropy, computed in fp32 whatever dtype the model computes in (Megatron's
    /// <c>vocab_parallel_cross_entropy</c> followed by the mean).
    /// </summary>
    /// <param name="logits">[..., vocab] logits (this rank's vocabulary slice under tensor parallelism).</param>
    /// <param name="targets">[...] token ids (int64), the same leading shape as <paramref name="logits"/>.</param>
    /// <returns>A scalar fp32 tensor.</returns>
    public Tensor CrossEntropy(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var flat = logits.to(ScalarType.Float32).reshape(-1, logits.shape[^1]);
        return nn.functional.cross_entropy(flat, targets.reshape(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>How many of <paramref name="heads"/> attention heads each tensor-parallel rank runs: heads / tp.</summary>
    /// <exception cref="ArgumentException">The tensor-parallel size does not divide <paramref name="heads"/>.</exception>
    public int HeadsPerRank(int heads)
    {
        if (heads < 1 || heads % TensorParallelSize != 0)
            throw new ArgumentException($"the tensor-parallel size {TensorParallelSize} must divide the number of heads, got {heads}");
        return heads / TensorParallelSize;
    }

    /// <summary>A bias-free linear layer with an N(0, 0.02) weight [out, in].</summary>
    private static Linear Linear(int inFeatures, int outFeatures) =>
        Initialised(() => nn.Linear(inFeatures, outFeatures, hasBias: false), m => m.weight!);

    /// <summary>
    /// Builds a module with the global RNG's state put back afterwards (TorchSharp's constructors draw their own
    /// default initialisation), then draws its weight as N(0, 0.02): one draw over the whole weight, nothing else.
    /// </summary>
    private static T Initialised<T>(Func<T> build, Func<T, Tensor> weight) where T : nn.Module
    {
        T module;
        using (var state = get_rng_state())
        {
            try { module = build(); }
            finally { set_rng_state(state); }
        }
        using (no_grad()) nn.init.normal_(weight(module), 0.0, InitStd);
        return module;
    }
}
