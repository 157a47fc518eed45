using DeepSpeedSharp.Samples.Shared;
using TorchSharp;
using DeepSpeedSharp.Zero;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>
/// A GPT-2-style decoder with nanoGPT's parameter names (<c>transformer.wte.weight</c>, ...,
/// <c>lm_head.weight</c>). Maps token ids [B, T] to logits [B, T, vocab].
/// </summary>
public sealed class GptModel : nn.Module<Tensor, Tensor>
{
    private readonly Transformer transformer;
    private readonly Linear lm_head;

    /// <param name="config">The model's shape.</param>
    /// <param name="zeroInit">With ZeRO stage 3: partitions each submodule right after it is built and initialised, so
    /// the whole model never exists on one rank (DeepSpeed's <c>zero.Init</c>).</param>
    public GptModel(GptConfig config, ZeroInit? zeroInit = null) : base(nameof(GptModel))
    {
        config.Validate();
        Config = config;
        transformer = new Transformer(config, zeroInit);
        lm_head = Built(nn.Linear(config.DModel, config.Vocab, hasBias: false), zeroInit);
        RegisterComponents();
    }

    /// <summary>The model's shape.</summary>
    public GptConfig Config { get; }

    /// <summary>The transformer blocks, in order (for activation checkpointing per block).</summary>
    public IReadOnlyList<Block> Blocks => transformer.Blocks;

    /// <summary>
    /// Activation checkpointing (<c>--checkpoint-activations</c>): 0 = off; k ≥ 1 = the blocks run in consecutive
    /// groups of k, each group one <see cref="DeepSpeed.Checkpointing"/> segment (only the group's input is kept; its
    /// activations are recomputed in backward), like DeepSpeed's <c>activation_checkpoint_interval</c>.
    /// </summary>
    public int CheckpointInterval
    {
        get => transformer.CheckpointInterval;
        set => transformer.CheckpointInterval = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), $"--checkpoint-activations must be 0 (off) or a positive block interval, got {value}");
    }

    public override Tensor forward(Tensor idx)
    {
        using var scope = NewDisposeScope();
        var x = transformer.call(idx);
        return lm_head.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Initialises a freshly built submodule — N(0, 0.02) for Linear and Embedding weights, zero biases, LayerNorm
    /// weight 1 and bias 0 — then hands it to ZeroInit, if any. A module built on the meta device (shapes only, see
    /// <see cref="ParameterDescription"/>) has no values to initialise and is returned as it is.
    /// </summary>
    private static T Built<T>(T module, ZeroInit? zeroInit) where T : nn.Module
    {
        using (no_grad())
        {
            foreach (var m in module.modules().Prepend(module).Distinct())
            {
                if (m.parameters(recurse: false).Any(p => p.device_type == DeviceType.META)) continue;
                switch (m)
                {
                    case Linear linear:
                        nn.init.normal_(linear.weight!, 0.0, 0.02);
                        linear.bias?.zero_();
                        break;
                    case Embedding embedding:
                        nn.init.normal_(embedding.weight!, 0.0, 0.02);
                        break;
                    case LayerNorm norm:
                        norm.weight?.fill_(1.0);
                        norm.bias?.zero_();
                        break;
                }
            }
        }
        return zeroInit is null ? module : zeroInit.Partition(module);
    }

    /// <summary>
    /// An embedding table. TorchSharp initialises <c>nn.Embedding</c>'s table on the CPU whatever the default device, so
    /// on the meta device (<c>--describe-parameters</c>) a one-row embedding gets an empty meta table of the full shape
    /// instead, which allocates nothing; otherwise the usual <c>nn.Embedding</c> (same random stream as before).
    /// </summary>
    private static Embedding NewEmbedding(long count, long dim)
    {
        if (get_default_device().type != DeviceType.META) return nn.Embedding(count, dim);
        var embedding = nn.Embedding(1, dim, device: CPU);
        embedding.weight = new Parameter(empty(count, dim));
        return embedding;
    }

    /// <summary>Embeddings, the blocks and the final LayerNorm (the <c>transformer.*</c> parameters).</summary>
    private sealed class Transformer : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding wte;
        private readonly Embedding wpe;
        private readonly ModuleList<Block> h;
        private readonly LayerNorm ln_f;
        private readonly Dropout drop;

        public Transformer(GptConfig config, ZeroInit? zeroInit) : base(nameof(Transformer))
        {
            wte = Built(NewEmbedding(config.Vocab, config.DModel), zeroInit);
            wpe = Built(NewEmbedding(config.Seq, config.DModel), zeroInit);
            drop = nn.Dropout(config.Dropout);
            h = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => Built(new Block(config), zeroInit)).ToArray());
            ln_f = Built(nn.LayerNorm(config.DModel, eps: 1e-5), zeroInit);
            RegisterComponents();
        }

        public IReadOnlyList<Block> Blocks => h.ToList();

        public int CheckpointInterval { get; set; }

        public override Tensor forward(Tensor idx)
        {
            using var scope = NewDisposeScope();
            long t = idx.shape[1];
            var pos = arange(t, dtype: ScalarType.Int64, device: idx.device);
            var x = CheckpointedLayers.Forward(h, CheckpointInterval, training, drop.call(wte.call(idx) + wpe.call(pos)));
            return ln_f.call(x).MoveToOuterDisposeScope();
        }
    }
}
