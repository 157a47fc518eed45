using System.CommandLine;
using DeepSpeedSharp.CommandLine;
using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Bert;

/// <summary>
/// Command-line options of the BERT sample. Unknown options are errors that list the known ones; every error is one
/// line naming the option. The vocabulary size is not an option: it comes from the data (see
/// <see cref="Data.BertVocabulary"/>).
/// </summary>
public sealed class BertOptions : SampleOptions
{
    /// <summary>The model's shape; its <see cref="BertConfig.Vocab"/> is set by the trainer from the data.</summary>
    public BertConfig Model { get; private set; } = new();
    /// <summary>
    /// Layers per checkpointed chunk of the encoder (the guide's <c>checkpointed_forward</c>), 0 = no checkpointing:
    /// <c>--checkpoint-activations</c> turns it on (every layer, or every K with <c>--checkpoint-activations K</c>), and
    /// <c>--checkpoint-activations-interval K</c> — the guide's name — sets K.
    /// </summary>
    public int CheckpointInterval { get; private set; }

    /// <summary>Parses the command line (System.CommandLine: <c>--name value</c> and <c>--name=value</c>); DeepSpeed's
    /// <c>--deepspeed</c>, <c>--deepspeed_config</c> and <c>--local_rank</c> come from <see cref="DeepSpeed.AddConfigArguments"/>.</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or bad value, or an impossible model shape.</exception>
    public static BertOptions Parse(string[] args)
    {
        var root = new RootCommand("The BERT sample: masked-LM pre-training of a BERT encoder by DeepSpeedSharp, as the DeepSpeed guide's example");
        var d = new BertConfig();
        var dModel = Add(root, TrainerOptions.Int("--d-model", "Model width", d.DModel));
        var layers = Add(root, TrainerOptions.Int("--layers", "Encoder layers", d.Layers));
        var heads = Add(root, TrainerOptions.Int("--heads", "Attention heads", d.Heads));
        var ffn = Add(root, TrainerOptions.OptionalInt("--ffn-hidden", "Hidden size of the MLP (default: 4 × --d-model)"));
        var seq = Add(root, TrainerOptions.Int("--seq", "Sequence length, [CLS] and [SEP] included", d.Seq, min: 3));
        var dropout = Add(root, TrainerOptions.Double("--dropout", "Dropout probability", d.Dropout));
        var interval = Add(root, TrainerOptions.OptionalInt("--checkpoint-activations-interval", "Encoder layers per checkpointed chunk (needs --checkpoint-activations)", valueName: "K"));
        var o = new BertOptions();
        if (o.ParseCommon(root, args, defaultSteps: 50, wholeModelWeights: false, pipeline: false) is not { } r) return o;
        o.Model = d with { DModel = r.GetValue(dModel), Layers = r.GetValue(layers), Heads = r.GetValue(heads), FfnHidden = r.GetValue(ffn),
                           Seq = r.GetValue(seq), Dropout = r.GetValue(dropout) };
        o.Model.Validate();
        if (r.GetValue(interval) is { } k && o.CheckpointActivations == 0)
            throw new ArgumentException("--checkpoint-activations-interval needs --checkpoint-activations (which turns checkpointing on)");
        o.CheckpointInterval = r.GetValue(interval) ?? o.CheckpointActivations;
        if (o.CheckpointInterval > o.Model.Layers)
            throw new ArgumentException($"--checkpoint-activations-interval {o.CheckpointInterval} is more than --layers {o.Model.Layers}");
        return o;
    }
}
