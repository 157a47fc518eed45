using System.Globalization;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Samples.Shared.Text;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// Command-line options of the LLaMA sample. Unknown options are errors that list the known ones; every error is
/// one line naming the option. The vocabulary size is not an option: it comes from the data (see
/// <see cref="VocabularyMap"/>).
/// </summary>
public sealed class LlamaOptions
{
    /// <summary>The model's shape; its <see cref="LlamaConfig.Vocab"/> is set by the trainer from the data.</summary>
    public LlamaConfig Model { get; private set; } = new();
    /// <summary><c>--deepspeed_config FILE</c>: the DeepSpeed JSON config (default: <see cref="Trainer.DefaultConfig"/>).</summary>
    public string? DeepSpeedConfig { get; private set; }
    /// <summary><c>--steps N</c>: optimizer steps in total (default 50).</summary>
    public int Steps { get; private set; } = 50;
    /// <summary><c>--seed N</c>: model initialisation and data order.</summary>
    public int Seed { get; private set; } = 1234;
    /// <summary><c>--micro-batch N</c>: overrides the config's micro-batch size per rank.</summary>
    public int? MicroBatch { get; private set; }
    /// <summary><c>--init-weights FILE</c>: whole-model safetensors weights loaded after initialisation (each tensor rank reads its slices).</summary>
    public string? InitWeights { get; private set; }
    /// <summary><c>--save-weights FILE</c>: the trained weights as one whole-model safetensors file (slices and stages gathered, rank 0 writes).</summary>
    public string? SaveWeights { get; private set; }
    /// <summary><c>--data FILE</c>: a UTF-8 text file to train on instead of the shipped corpus.</summary>
    public string? Data { get; private set; }
    /// <summary><c>--full-vocab</c>: GPT-2's 50,257 ids (padded to 50,304) instead of the compact vocabulary.</summary>
    public bool FullVocab { get; private set; }
    /// <summary><c>--data-order sequential|random</c> (default random).</summary>
    public bool SequentialData { get; private set; }
    /// <summary><c>--loss-log FILE</c>: rank 0 writes one JSON line {step, loss, lr, grad_norm} per step.</summary>
    public string? LossLog { get; private set; }
    /// <summary><c>--local_rank N</c>: passed by launchers; accepted, the environment says the same.</summary>
    public int? LocalRank { get; private set; }
    /// <summary><c>--warmup-steps N</c>: steps left out of the tokens/s median.</summary>
    public int WarmupSteps { get; private set; } = 3;
    /// <summary>0 = off; k = checkpoint the blocks in groups of k (<c>--checkpoint-activations</c> alone means 1).</summary>
    public int CheckpointActivations { get; private set; }
    /// <summary><c>--save-dir DIR</c>: engine checkpoints go here.</summary>
    public string? SaveDir { get; private set; }
    /// <summary><c>--save-every K</c>: save a checkpoint every K steps (and at the end).</summary>
    public int SaveEvery { get; private set; }
    /// <summary><c>--resume DIR</c>: continue from the latest checkpoint of DIR (or from a tag directory).</summary>
    public string? Resume { get; private set; }
    /// <summary><c>--tensor-model-parallel-size N</c> (default 1).</summary>
    public int TensorModelParallelSize { get; private set; } = 1;
    /// <summary><c>--sequence-parallel</c>: Megatron's sequence parallelism (needs tensor parallelism).</summary>
    public bool SequenceParallel { get; private set; }
    /// <summary>
    /// <c>--pipeline-model-parallel-size N</c> (default 1): N &gt; 1 splits the model into N pipeline stages (embedding,
    /// blocks, head as pipeline layers; see <see cref="LlamaPipeline"/>) trained with <c>TrainBatch</c>; it composes with
    /// <c>--tensor-model-parallel-size</c> on one <c>PipelineParallelGrid.Create(N, T)</c>.
    /// </summary>
    public int PipelineModelParallelSize { get; private set; } = 1;

    private static readonly string[] Known =
    {
        "--d-model", "--layers", "--heads", "--kv-heads", "--ffn-hidden", "--seq", "--dropout", "--full-vocab",
        "--deepspeed_config", "--deepspeed", "--steps", "--seed", "--micro-batch", "--init-weights", "--save-weights",
        "--data", "--data-order", "--loss-log", "--local_rank", "--warmup-steps", "--checkpoint-activations",
        "--save-dir", "--save-every", "--resume", "--tensor-model-parallel-size", "--sequence-parallel",
        "--pipeline-model-parallel-size",
    };

    /// <summary>Options that take no value.</summary>
    private static readonly string[] Switches = { "--deepspeed", "--full-vocab", "--sequence-parallel" };

    /// <summary>Parses <c>--name value</c> and <c>--name=value</c> forms.</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or bad value, or an impossible model shape.</exception>
    public static LlamaOptions Parse(string[] args)
    {
        var o = new LlamaOptions();
        var m = o.Model;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i], name = arg;
            string? inline = null;
            int eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0) { name = arg[..eq]; inline = arg[(eq + 1)..]; }
            if (!Known.Contains(name)) throw new ArgumentException($"unknown option '{arg}'; known options: {string.Join(" ", Known)}");
            if (Switches.Contains(name))
            {
                if (inline != null) throw new ArgumentException($"option {name} takes no value, got '{arg}'");
                if (name == "--full-vocab") o.FullVocab = true;
                if (name == "--sequence-parallel") o.SequenceParallel = true;
                continue; // --deepspeed: DeepSpeed's marker flag, nothing to do
            }
            if (name == "--checkpoint-activations" && inline == null)
            {
                // A flag (every block) or followed by the block interval k.
                bool hasK = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
                o.CheckpointActivations = hasK ? Int(name, args[++i]) : 1;
                continue;
            }
            string Value() => inline ?? (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)
                ? args[++i] : throw new ArgumentException($"option {name} needs a value"));
            switch (name)
            {
                case "--d-model": m = m with { DModel = Int(name, Value()) }; break;
                case "--layers": m = m with { Layers = Int(name, Value()) }; break;
                case "--heads": m = m with { Heads = Int(name, Value()) }; break;
                case "--kv-heads": m = m with { KvHeads = Int(name, Value()) }; break;
                case "--ffn-hidden": m = m with { FfnHidden = Int(name, Value()) }; break;
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
                case "--checkpoint-activations": o.CheckpointActivations = Int(name, Value(), min: 0); break;
                case "--save-dir": o.SaveDir = Value(); break;
                case "--save-every": o.SaveEvery = Int(name, Value(), min: 0); break;
                case "--resume": o.Resume = Value(); break;
                case "--tensor-model-parallel-size": o.TensorModelParallelSize = Int(name, Value()); break;
                case "--pipeline-model-parallel-size": o.PipelineModelParallelSize = Int(name, Value()); break;
            }
        }
        m.Validate();
        if (o.SaveEvery > 0 && o.SaveDir == null) throw new ArgumentException("--save-every needs --save-dir DIR");
        o.Model = m;
        return o;
    }

    /// <summary>
    /// Throws when the parallel flags cannot work together: <c>--sequence-parallel</c> needs
    /// <c>--tensor-model-parallel-size</c> &gt; 1 and a sequence length it divides, the tensor size must divide the heads
    /// and kv heads; with pipeline stages (<c>--pipeline-model-parallel-size</c> &gt; 1) every stage needs a layer.
    /// </summary>
    public void RequireAvailableParallelism()
    {
        int tp = TensorModelParallelSize;
        if (SequenceParallel && tp == 1)
            throw new ArgumentException("--sequence-parallel needs --tensor-model-parallel-size > 1 (it splits the sequence across the tensor-parallel ranks)");
        if (SequenceParallel && Model.Seq % tp != 0)
            throw new ArgumentException($"--sequence-parallel: --seq {Model.Seq} must be a multiple of --tensor-model-parallel-size {tp}");
        if (Model.Heads % tp != 0 || Model.KvHeads % tp != 0)
            throw new ArgumentException($"--tensor-model-parallel-size {tp} must divide --heads {Model.Heads} and --kv-heads {Model.KvHeads}");
        if (Model.FfnHiddenSize % tp != 0)
            throw new ArgumentException($"--tensor-model-parallel-size {tp} must divide --ffn-hidden {Model.FfnHiddenSize}");
        int pp = PipelineModelParallelSize;
        if (pp == 1) return;
        if (Model.Layers + 2 < pp)
            throw new ArgumentException($"--pipeline-model-parallel-size {pp} needs at least {pp} pipeline layers, but --layers {Model.Layers} gives {Model.Layers + 2} (embedding, blocks, head)");
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
