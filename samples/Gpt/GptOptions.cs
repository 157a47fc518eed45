using System.Globalization;
using DeepSpeedSharp.Samples.Gpt.Model;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>Command-line options of the sample trainer. Unknown options are errors that list the known ones.</summary>
public sealed class GptOptions
{
    public GptConfig Model { get; private set; } = new();
    public string? DeepSpeedConfig { get; private set; }
    public int Steps { get; private set; } = 20;
    public int Seed { get; private set; } = 1234;
    public int? MicroBatch { get; private set; }
    public string? InitWeights { get; private set; }
    public string? SaveWeights { get; private set; }
    public string? Data { get; private set; }
    public bool SequentialData { get; private set; }
    public string? LossLog { get; private set; }
    public int? LocalRank { get; private set; }
    public int WarmupSteps { get; private set; } = 3;
    public bool ZeroInit { get; private set; }
    /// <summary>
    /// <c>--describe-parameters</c>: build the model from the model flags on the meta device (no weights allocated),
    /// print <c>{"parameters": N, "largest_parameter": M}</c> and exit without training (what <c>dss estimate --model</c> reads).
    /// </summary>
    public bool DescribeParameters { get; private set; }
    /// <summary>0 = off; k = checkpoint the blocks in groups of k (<c>--checkpoint-activations</c> alone means 1).</summary>
    public int CheckpointActivations { get; private set; }
    public string? SaveDir { get; private set; }
    public int SaveEvery { get; private set; }
    public string? Resume { get; private set; }
    /// <summary>
    /// <c>--pipeline-model-parallel-size P</c> (default 1): P &gt; 1 splits the model into P pipeline stages (embedding,
    /// blocks, head as pipeline layers; see <see cref="GptPipeline"/>) trained with <c>TrainBatch</c>; the number of
    /// ranks divided by P is the data-parallel size. Every stage starts from the weights of the whole model built from
    /// --seed (and --init-weights).
    /// </summary>
    public int PipelineModelParallelSize { get; private set; } = 1;

    /// <summary>
    /// <c>--virtual-pipeline-model-parallel-size V</c> (default 1): with pipeline stages, V &gt; 1 gives each stage V model
    /// chunks trained by the interleaved schedule (the micro-batches must be a multiple of the stages).
    /// </summary>
    public int VirtualPipelineModelParallelSize { get; private set; } = 1;

    private static readonly string[] Known =
    {
        "--vocab", "--d-model", "--layers", "--heads", "--seq", "--dropout", "--deepspeed_config", "--deepspeed",
        "--steps", "--seed", "--micro-batch", "--init-weights", "--save-weights", "--data", "--data-order",
        "--loss-log", "--local_rank", "--warmup-steps", "--zero-init", "--checkpoint-activations",
        "--save-dir", "--save-every", "--resume", "--pipeline-model-parallel-size", "--virtual-pipeline-model-parallel-size",
        "--describe-parameters",
    };

    /// <summary>Parses <c>--name value</c> and <c>--name=value</c> forms.</summary>
    public static GptOptions Parse(string[] args)
    {
        var o = new GptOptions();
        var m = o.Model;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i], name = arg;
            string? inline = null;
            int eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0) { name = arg[..eq]; inline = arg[(eq + 1)..]; }
            if (name == "--deepspeed") continue; // DeepSpeed's marker flag: accepted, nothing to do
            if (name == "--zero-init") { o.ZeroInit = true; continue; }
            if (name == "--describe-parameters") { o.DescribeParameters = true; continue; }
            if (name == "--checkpoint-activations" && inline == null)
            {
                // A flag (every block) or followed by the block interval k.
                bool hasK = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
                o.CheckpointActivations = hasK ? Int(name, args[++i]) : 1;
                continue;
            }
            if (!Known.Contains(name)) throw new ArgumentException($"unknown option '{arg}'; known options: {string.Join(" ", Known)}");
            string Value() => inline ?? (++i < args.Length ? args[i] : throw new ArgumentException($"option {name} needs a value"));
            switch (name)
            {
                case "--vocab": m = m with { Vocab = Int(name, Value()) }; break;
                case "--d-model": m = m with { DModel = Int(name, Value()) }; break;
                case "--layers": m = m with { Layers = Int(name, Value()) }; break;
                case "--heads": m = m with { Heads = Int(name, Value()) }; break;
                case "--seq": m = m with { Seq = Int(name, Value()) }; break;
                case "--dropout": m = m with { Dropout = Double(name, Value()) }; break;
                case "--deepspeed_config": o.DeepSpeedConfig = Value(); break;
                case "--steps": o.Steps = Int(name, Value(), min: 0); break;
                case "--seed": o.Seed = Int(name, Value(), min: 0); break;
                case "--micro-batch": o.MicroBatch = Int(name, Value()); break;
                case "--init-weights": o.InitWeights = Value(); break;
                case "--save-weights": o.SaveWeights = Value(); break;
                case "--data": o.Data = Value(); break;
                case "--data-order":
                    var order = Value();
                    o.SequentialData = order switch
                    {
                        "sequential" => true,
                        "random" => false,
                        _ => throw new ArgumentException($"--data-order must be 'sequential' or 'random', got '{order}'"),
                    };
                    break;
                case "--loss-log": o.LossLog = Value(); break;
                case "--local_rank": o.LocalRank = Int(name, Value(), min: 0); break;
                case "--warmup-steps": o.WarmupSteps = Int(name, Value(), min: 0); break;
                case "--checkpoint-activations": o.CheckpointActivations = Int(name, Value()); break;
                case "--save-dir": o.SaveDir = Value(); break;
                case "--save-every": o.SaveEvery = Int(name, Value(), min: 0); break;
                case "--resume": o.Resume = Value(); break;
                case "--pipeline-model-parallel-size": o.PipelineModelParallelSize = Int(name, Value()); break;
                case "--virtual-pipeline-model-parallel-size": o.VirtualPipelineModelParallelSize = Int(name, Value()); break;
            }
        }
        m.Validate();
        if (o.SaveEvery > 0 && o.SaveDir == null) throw new ArgumentException("--save-every needs --save-dir DIR");
        o.Model = m;
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

    private static int Int(string name, string value, int min = 1)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min)
            throw new ArgumentException($"{name} must be an integer ≥ {min}, got '{value}'");
        return v;
    }

    private static double Double(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            ? v : throw new ArgumentException($"{name} must be a number, got '{value}'");
}
