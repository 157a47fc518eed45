using System.Globalization;
using DeepSpeedSharp.Pipeline;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// The LLaMA written as a sequence of pipeline layers, for a <see cref="PipelineModule"/>
/// (<c>--pipeline-model-parallel-size</c>): layer 0 is <see cref="LlamaEmbedding"/>, layers 1..L are the model's
/// <see cref="LlamaBlock"/>s and layer L + 1 is <see cref="LlamaHead"/> (final RMSNorm + LM head), all built by the same
/// <see cref="LlamaLayers"/> (so they are tensor-parallel on a grid with tensor ranks). The pipeline names parameters by
/// layer index, as DeepSpeed does; <see cref="ToPipelineName"/> maps <see cref="LlamaModel"/>'s Hugging Face names onto
/// them, so a stage can take its weights from the unsplit model.
/// </summary>
public sealed class LlamaPipeLayers
{
    private readonly LlamaConfig config;
    private readonly LlamaLayers layers;

    /// <param name="config">The model's shape (with its vocabulary set).</param>
    /// <param name="layers">Where the embedding, projections, LM head and loss come from.</param>
    public LlamaPipeLayers(LlamaConfig config, LlamaLayers layers)
    {
        config.Validate();
        this.config = config;
        this.layers = layers ?? throw new ArgumentNullException(nameof(layers));
    }

    /// <summary>Index of the head layer: L + 1.</summary>
    public int HeadIndex => config.Layers + 1;

    /// <summary>
    /// The layer specs: embedding, blocks, head. Their parameter counts (of the whole, unsplit layers, the same on every
    /// rank) are given, so partitioning by parameters builds no layer to count them.
    /// </summary>
    public List<LayerSpec> Specs()
    {
        long d = config.DModel, kv = (long)config.KvHeads * config.HeadDim, f = config.FfnHiddenSize;
        var specs = new List<LayerSpec> { new(() => new LlamaEmbedding(config, layers), nameof(LlamaEmbedding), config.Vocab * d) };
        for (int i = 0; i < config.Layers; i++)
            specs.Add(new LayerSpec(() => new LlamaBlock(config, layers), nameof(LlamaBlock), 2 * d + 2 * d * d + 2 * d * kv + 3 * d * f));
        specs.Add(new LayerSpec(() => new LlamaHead(config, layers), nameof(LlamaHead), d + d * config.Vocab));
        return specs;
    }

    /// <summary>
    /// The pipeline's name of a <see cref="LlamaModel"/> parameter: <c>model.embed_tokens.*</c> → <c>0.embed_tokens.*</c>;
    /// <c>model.layers.i.*</c> → <c>(i+1).*</c>; <c>model.norm.*</c> and <c>lm_head.*</c> → <c>(L+1).norm.*</c>,
    /// <c>(L+1).lm_head.*</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not one of LlamaModel's.</exception>
    public string ToPipelineName(string llamaName)
    {
        const string blocks = "model.layers.";
        if (llamaName.StartsWith("model.embed_tokens.", StringComparison.Ordinal)) return "0." + llamaName["model.".Length..];
        if (llamaName.StartsWith("model.norm.", StringComparison.Ordinal)) return Layer(HeadIndex, llamaName["model.".Length..]);
        if (llamaName.StartsWith("lm_head.", StringComparison.Ordinal)) return Layer(HeadIndex, llamaName);
        if (llamaName.StartsWith(blocks, StringComparison.Ordinal))
        {
            string rest = llamaName[blocks.Length..];
            int dot = rest.IndexOf('.');
            if (dot > 0 && int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out int block) && block < config.Layers)
                return Layer(block + 1, rest[(dot + 1)..]);
        }
        throw new ArgumentException($"'{llamaName}' is not a parameter name of the LLaMA model with {config.Layers} blocks");
    }

    /// <summary>The sample's loss on the last stage: the vocabulary-parallel cross-entropy (<see cref="LlamaLayers.CrossEntropy"/>).</summary>
    public Tensor Loss(Tensor logits, Tensor targets) => layers.CrossEntropy(logits, targets);

    private static string Layer(int index, string rest) => index.ToString(CultureInfo.InvariantCulture) + "." + rest;
}
