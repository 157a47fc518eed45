using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>
/// The first pipeline layer of the GPT: token ids [B, T] → dropout(wte(ids) + wpe(positions)) [B, T, d], the part of
/// <see cref="GptModel"/> before its blocks (parameters <c>wte.weight</c> and <c>wpe.weight</c>). Its weights are
/// TorchSharp's defaults until the trainer copies the unsplit model's in (see <see cref="GptPipeLayers"/>).
/// </summary>
public sealed class GptEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Embedding wte;
    private readonly Embedding wpe;
    private readonly Dropout drop;

    /// <param name="config">The model's shape (vocabulary, sequence length, width, dropout).</param>
    public GptEmbedding(GptConfig config) : base(nameof(GptEmbedding))
    {
        wte = nn.Embedding(config.Vocab, config.DModel);
        wpe = nn.Embedding(config.Seq, config.DModel);
        drop = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    /// <summary>Embeds token ids [B, T] (int64) into [B, T, d].</summary>
    public override Tensor forward(Tensor idx)
    {
        using var scope = NewDisposeScope();
        var pos = arange(idx.shape[1], dtype: ScalarType.Int64, device: idx.device);
        return drop.call(wte.call(idx) + wpe.call(pos)).MoveToOuterDisposeScope();
    }
}
