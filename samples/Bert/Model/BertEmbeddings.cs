using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// BERT's input embeddings: word embedding + learned absolute position embedding, then LayerNorm and dropout. There are
/// no segment (token type) embeddings: the sample pre-trains with masked-LM only, without next-sentence prediction,
/// as RoBERTa does. Maps token ids [B, T] to hidden states [B, T, d].
/// </summary>
public sealed class BertEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding word_embeddings;
    private readonly Embedding position_embeddings;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;

    /// <param name="config">The model's shape.</param>
    public BertEmbeddings(BertConfig config) : base(nameof(BertEmbeddings))
    {
        word_embeddings = BertInit.Embedding(config.Vocab, config.DModel);
        position_embeddings = BertInit.Embedding(config.Seq, config.DModel);
        LayerNorm = BertInit.LayerNorm(config.DModel, config.NormEps);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor idx)
    {
        using var scope = NewDisposeScope();
        var pos = arange(idx.shape[1], dtype: ScalarType.Int64, device: idx.device);
        var x = word_embeddings.call(idx) + position_embeddings.call(pos);
        return dropout.call(LayerNorm.call(x)).MoveToOuterDisposeScope();
    }
}
