using System.Globalization;
using DeepSpeedSharp.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>
/// The GPT written as a sequence of pipeline layers, for a <see cref="PipelineModule"/>
/// (<c>--pipeline-model-parallel-size</c>): layer 0 is <see cref="GptEmbedding"/> (wte + wpe + dropout), layers
/// 1..L are the model's <see cref="Block"/>s and layer L + 1 is <see cref="GptHead"/> (ln_f + lm_head). The pipeline
/// names its parameters by layer index, as DeepSpeed does; <see cref="ToPipelineName"/> maps <see cref="GptModel"/>'s
/// nanoGPT names onto them, so a stage can take its weights from the unsplit model.
/// </summary>
public sealed class GptPipeLayers
{
    private readonly GptConfig config;

    /// <param name="config">The model's shape.</param>
    public GptPipeLayers(GptConfig config)
    {
        config.Validate();
        this.config = config;
    }

    /// <summary>Index of the head layer: L + 1.</summary>
    public int HeadIndex => config.Layers + 1;

    /// <summary>
    /// The layer specs: embedding, blocks, head. Their trainable parameter counts are given (computed from the shape,
    /// as <see cref="GptConfig.ParameterCount"/> does), so partitioning by parameters builds no layer to count them.
    /// </summary>
    public List<LayerSpec> Specs()
    {
        long d = config.DModel;
        var specs = new List<LayerSpec>
        {
            new(() => new GptEmbedding(config), nameof(GptEmbedding), ((long)config.Vocab + config.Seq) * d),
        };
        for (int i = 0; i < config.Layers; i++)
            specs.Add(new LayerSpec(() => new Block(config), nameof(Block), 12 * d * d + 13 * d));
        specs.Add(new LayerSpec(() => new GptHead(config), nameof(GptHead), 2 * d + d * config.Vocab));
        return specs;
    }

    /// <summary>
    /// The pipeline's name of a <see cref="GptModel"/> parameter: <c>transformer.wte.*</c> and <c>transformer.wpe.*</c>
    /// → <c>0.wte.*</c>, <c>0.wpe.*</c>; <c>transformer.h.i.*</c> → <c>(i+1).*</c>; <c>transformer.ln_f.*</c> and
    /// <c>lm_head.*</c> → <c>(L+1).ln_f.*</c>, <c>(L+1).lm_head.*</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not one of GptModel's.</exception>
    public string ToPipelineName(string gptName)
    {
        const string blocks = "transformer.h.";
        if (gptName.StartsWith("transformer.wte.", StringComparison.Ordinal) || gptName.StartsWith("transformer.wpe.", StringComparison.Ordinal))
            return "0." + gptName["transformer.".Length..];
        if (gptName.StartsWith("transformer.ln_f.", StringComparison.Ordinal))
            return Layer(HeadIndex, gptName["transformer.".Length..]);
        if (gptName.StartsWith("lm_head.", StringComparison.Ordinal))
            return Layer(HeadIndex, gptName);
        if (gptName.StartsWith(blocks, StringComparison.Ordinal))
        {
            string rest = gptName[blocks.Length..];
            int dot = rest.IndexOf('.');
            if (dot > 0 && int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out int block) && block < config.Layers)
                return Layer(block + 1, rest[(dot + 1)..]);
        }
        throw new ArgumentException($"'{gptName}' is not a parameter name of the GPT model with {config.Layers} blocks");
    }

    /// <summary>The sample's loss on the last stage: cross-entropy of the logits, in fp32, against the target ids.</summary>
    public Tensor Loss(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        return nn.functional.cross_entropy(logits.to(ScalarType.Float32).view(-1, config.Vocab), targets.view(-1)).MoveToOuterDisposeScope();
    }

    private static string Layer(int index, string rest) => index.ToString(CultureInfo.InvariantCulture) + "." + rest;
}
