using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// A small BERT for masked-LM pre-training: <see cref="BertEmbeddings"/>, a <see cref="BertEncoder"/> of post-LN
/// layers and the <see cref="BertMlmHead"/>. Maps token ids [B, T] to logits [B, T, vocab]; <see cref="MaskedLmLoss"/>
/// turns them into the loss over the masked positions. Parameter names follow Hugging Face's <c>BertForMaskedLM</c>
/// loosely (<c>bert.embeddings.word_embeddings.weight</c>, <c>bert.encoder.layer.0.attention.query.weight</c>, …,
/// <c>cls.decoder.weight</c>).
/// <para>Weights are drawn from the global torch RNG in construction order (see <see cref="BertInit"/>), so
/// <c>torch.manual_seed(s)</c> before the constructor fixes the model.</para>
/// </summary>
public sealed class BertForMaskedLM : nn.Module<Tensor, Tensor>
{
    /// <summary>The label of a position that is not predicted (PyTorch's <c>ignore_index</c> default).</summary>
    public const long IgnoreIndex = -100;

    private readonly Encoder bert;
    private readonly BertMlmHead cls;

    /// <param name="config">The model's shape.</param>
    public BertForMaskedLM(BertConfig config) : base(nameof(BertForMaskedLM))
    {
        config.Validate();
        Config = config;
        bert = new Encoder(config);
        cls = new BertMlmHead(config);
        RegisterComponents();
    }

    /// <summary>The model's shape.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder layers, in order.</summary>
    public IReadOnlyList<BertLayer> Layers => bert.Stack.Layers;

    /// <summary>
    /// Activation checkpointing: 0 = off; k ≥ 1 = the encoder layers run in chunks of k, each one
    /// <see cref="DeepSpeed.Checkpointing"/> segment (<c>--checkpoint-activations --checkpoint-activations-interval k</c>).
    /// </summary>
    public int CheckpointInterval
    {
        get => bert.Stack.CheckpointInterval;
        set => bert.Stack.CheckpointInterval = value;
    }

    public override Tensor forward(Tensor idx)
    {
        using var scope = NewDisposeScope();
        return cls.call(bert.call(idx)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The masked-LM loss: the mean cross-entropy, in fp32 whatever dtype the model computes in, over the positions
    /// whose label is not <see cref="IgnoreIndex"/>.
    /// </summary>
    /// <param name="logits">[B, T, vocab].</param>
    /// <param name="labels">[B, T] (int64): the original token at masked positions, <see cref="IgnoreIndex"/> elsewhere.</param>
    public static Tensor MaskedLmLoss(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var flat = logits.to(ScalarType.Float32).view(-1, logits.shape[^1]);
        return nn.functional.cross_entropy(flat, labels.reshape(-1), ignore_index: IgnoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>The embeddings and the encoder (the <c>bert.*</c> parameters).</summary>
    private sealed class Encoder : nn.Module<Tensor, Tensor>
    {
        private readonly BertEmbeddings embeddings;
        private readonly BertEncoder encoder;

        public Encoder(BertConfig config) : base(nameof(Encoder))
        {
            embeddings = new BertEmbeddings(config);
            encoder = new BertEncoder(config);
            RegisterComponents();
        }

        public BertEncoder Stack => encoder;

        public override Tensor forward(Tensor idx)
        {
            using var scope = NewDisposeScope();
            return encoder.call(embeddings.call(idx)).MoveToOuterDisposeScope();
        }
    }
}
