using DeepSpeedSharp.Samples.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// A LLaMA-style decoder (the shape Megatron-DeepSpeed trains as LLaMA): token embedding; blocks of
/// RMSNorm → causal self-attention with RoPE and optional grouped-query attention → residual, RMSNorm → SwiGLU MLP →
/// residual; a final RMSNorm and an untied LM head. No biases, no position embedding table. Parameter names follow
/// Hugging Face's <c>LlamaForCausalLM</c> (<c>model.embed_tokens.weight</c>,
/// <c>model.layers.0.self_attn.q_proj.weight</c>, ..., <c>model.norm.weight</c>, <c>lm_head.weight</c>).
/// Maps token ids [B, T] to logits [B, T, vocab].
/// <para>Weights are drawn from the global torch RNG in construction order — embedding; per block q, k, v, o, gate,
/// up, down; LM head — each N(0, 0.02) (RMSNorm weights are ones), so <c>torch.manual_seed(s)</c> before the
/// constructor fixes the model.</para>
/// </summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor>
{
    private readonly Decoder model;
    private readonly nn.Module<Tensor, Tensor> lm_head;

    /// <param name="config">The model's shape.</param>
    /// <param name="layers">Where the embedding, projections and LM head come from.</param>
    public LlamaModel(LlamaConfig config, LlamaLayers layers) : base(nameof(LlamaModel))
    {
        ArgumentNullException.ThrowIfNull(layers);
        config.Validate();
        Config = config;
        model = new Decoder(config, layers);
        lm_head = layers.ColumnLinear(config.DModel, config.Vocab, gatherOutput: false);
        RegisterComponents();
    }

    /// <summary>The model's shape.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The transformer blocks, in order.</summary>
    public IReadOnlyList<LlamaBlock> Blocks => model.Blocks;

    /// <summary>
    /// Activation checkpointing (<c>--checkpoint-activations</c>): 0 = off; k ≥ 1 = the blocks run in consecutive
    /// groups of k, each group one <see cref="DeepSpeed.Checkpointing"/> segment whose activations are recomputed in
    /// backward.
    /// </summary>
    public int CheckpointInterval
    {
        get => model.CheckpointInterval;
        set => model.CheckpointInterval = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), $"--checkpoint-activations must be 0 (off) or a positive block interval, got {value}");
    }

    public override Tensor forward(Tensor idx)
    {
        using var scope = NewDisposeScope();
        var x = model.call(idx);
        return lm_head.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>The embedding, the blocks and the final RMSNorm (the <c>model.*</c> parameters).</summary>
    private sealed class Decoder : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> embed_tokens;
        private readonly ModuleList<LlamaBlock> layers;
        private readonly RmsNorm norm;

        public Decoder(LlamaConfig config, LlamaLayers factory) : base(nameof(Decoder))
        {
            embed_tokens = factory.Embedding(config.Vocab, config.DModel);
            layers = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new LlamaBlock(config, factory)).ToArray());
            norm = factory.Norm(config.DModel, config.NormEps);
            RegisterComponents();
        }

        public IReadOnlyList<LlamaBlock> Blocks => layers.ToList();

        public int CheckpointInterval { get; set; }

        public override Tensor forward(Tensor idx)
        {
            using var scope = NewDisposeScope();
            var x = CheckpointedLayers.Forward(layers, CheckpointInterval, training, embed_tokens.call(idx));
            return norm.call(x).MoveToOuterDisposeScope();
        }
    }
}
