using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// The first pipeline layer of the LLaMA: token ids [B, T] → embeddings [B, T, d] (with sequence parallelism, this tensor
/// rank's slice of the sequence), the part of <see cref="LlamaModel"/> before its blocks (parameter
/// <c>embed_tokens.weight</c>, vocabulary-parallel under tensor parallelism).
/// </summary>
public sealed class LlamaEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> embed_tokens;

    /// <param name="config">The model's shape.</param>
    /// <param name="layers">Where the embedding comes from.</param>
    public LlamaEmbedding(LlamaConfig config, LlamaLayers layers) : base(nameof(LlamaEmbedding))
    {
        embed_tokens = layers.Embedding(config.Vocab, config.DModel);
        RegisterComponents();
    }

    /// <summary>Embeds token ids [B, T] (int64).</summary>
    public override Tensor forward(Tensor idx) => embed_tokens.call(idx);
}
