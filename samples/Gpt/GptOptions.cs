using System.CommandLine;
using DeepSpeedSharp.CommandLine;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Samples.Gpt.Model;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>Command-line options of the GPT sample (the shared ones in <see cref="SampleOptions"/>). Unknown options are errors that list the known ones.</summary>
public sealed class GptOptions : SampleOptions
{
    /// <summary>The model's shape (<c>--vocab</c>, <c>--d-model</c>, <c>--layers</c>, <c>--heads</c>, <c>--seq</c>, <c>--dropout</c>).</summary>
    public GptConfig Model { get; private set; } = new();
    /// <summary><c>--zero-init</c>: build the model already partitioned (ZeRO-3's <c>zero.Init</c>).</summary>
    public bool ZeroInit { get; private set; }
    /// <summary>
    /// <c>--describe-parameters</c>: build the model from the model flags on the meta device (no weights allocated),
    /// print <c>{"parameters": N, "largest_parameter": M}</c> and exit without training (what <c>dss estimate --model</c> reads).
    /// </summary>
    public bool DescribeParameters { get; private set; }
    /// <summary>
    /// <c>--virtual-pipeline-model-parallel-size V</c> (default 1): with pipeline stages, V &gt; 1 gives each stage V model
    /// chunks trained by the interleaved schedule (the micro-batches must be a multiple of the stages).
    /// </summary>
    public int VirtualPipelineModelParallelSize { get; private set; } = 1;

    /// <summary>Parses the command line (System.CommandLine: <c>--name value</c> and <c>--name=value</c>); DeepSpeed's
    /// <c>--deepspeed</c>, <c>--deepspeed_config</c> and <c>--local_rank</c> come from <see cref="DeepSpeed.AddConfigArguments"/>.</summary>
    /// <exception cref="ArgumentException">One line: an unknown option, a bad value, or flags that do not work together.</exception>
    public static GptOptions Parse(string[] args)
    {
        var root = new RootCommand("The GPT sample: a GPT-2-style model trained by DeepSpeedSharp");
        var d = new GptConfig();
        var vocab = Add(root, TrainerOptions.Int("--vocab", "Vocabulary size", d.Vocab));
        var dModel = Add(root, TrainerOptions.Int("--d-model", "Model width", d.DModel));
        var layers = Add(root, TrainerOptions.Int("--layers", "Transformer blocks", d.Layers));
        var heads = Add(root, TrainerOptions.Int("--heads", "Attention heads", d.Heads));
        var seq = Add(root, TrainerOptions.Int("--seq", "Sequence length", d.Seq));
        var dropout = Add(root, TrainerOptions.Double("--dropout", "Dropout probability", d.Dropout));
        var zeroInit = Add(root, TrainerOptions.Flag("--zero-init", "Build the model partitioned (ZeRO-3's zero.Init)"));
        var describe = Add(root, TrainerOptions.Flag("--describe-parameters", "Print {\"parameters\": N, \"largest_parameter\": M} for the model flags and exit"));
        var virtualStages = Add(root, TrainerOptions.Int("--virtual-pipeline-model-parallel-size", "Model chunks per pipeline stage (interleaved schedule)", 1));
        var o = new GptOptions();
        if (o.ParseCommon(root, args, defaultSteps: 20) is not { } r) return o;
        o.Model = new GptConfig(r.GetValue(vocab), r.GetValue(dModel), r.GetValue(layers), r.GetValue(heads), r.GetValue(seq), r.GetValue(dropout));
        o.Model.Validate();
        (o.ZeroInit, o.DescribeParameters, o.VirtualPipelineModelParallelSize) = (r.GetValue(zeroInit), r.GetValue(describe), r.GetValue(virtualStages));
        o.RequireAvailableWithPipeline();
        return o;
    }

    /// <summary>Throws for the options that do not work with <c>--pipeline-model-parallel-size</c> &gt; 1 (yet).</summary>
    private void RequireAvailableWithPipeline()
    {
        int p = PipelineModelParallelSize;
        if (p == 1 && VirtualPipelineModelParallelSize > 1)
            throw new ArgumentException($"--virtual-pipeline-model-parallel-size {VirtualPipelineModelParallelSize} needs --pipeline-model-parallel-size > 1");
        if (p == 1) return;
        if (VirtualPipelineModelParallelSize > 1 && Model.Layers + 2 < p * VirtualPipelineModelParallelSize)
            throw new ArgumentException($"--pipeline-model-parallel-size {p} × --virtual-pipeline-model-parallel-size {VirtualPipelineModelParallelSize} needs at least " +
                                        $"{p * VirtualPipelineModelParallelSize} pipeline layers, but --layers {Model.Layers} gives {Model.Layers + 2} (embedding, blocks, head)");
        if (ZeroInit)
            throw new ArgumentException($"--zero-init builds a ZeRO stage 3 model, which pipeline parallelism does not support (--pipeline-model-parallel-size {p}); drop --zero-init or use 1");
        if (Model.Layers + 2 < p)
            throw new ArgumentException($"--pipeline-model-parallel-size {p} needs at least {p} pipeline layers, but --layers {Model.Layers} gives {Model.Layers + 2} (embedding, blocks, head)");
    }
}
