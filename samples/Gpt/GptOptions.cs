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
    /// <summary>0 = off; k = checkpoint the blocks in groups of k (<c>--checkpoint-activations</c> alone means 1).</summary>
    public int CheckpointActivations { get; private set; }
    public string? SaveDir { get; private set; }
    public int SaveEvery { get; private set; }
    public string? Resume { get; private set; }

    private static readonly string[] Known =
    {
        "--vocab", "--d-model", "--layers", "--heads", "--seq", "--dropout", "--deepspeed_config", "--deepspeed",
        "--steps", "--seed", "--micro-batch", "--init-weights", "--save-weights", "--data", "--data-order",
        "--loss-log", "--local_rank", "--warmup-steps", "--zero-init", "--checkpoint-activations",
        "--save-dir", "--save-every", "--resume",
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
            }
        }
        m.Validate();
        if (o.SaveEvery > 0 && o.SaveDir == null) throw new ArgumentException("--save-every needs --save-dir DIR");
        o.Model = m;
        return o;
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
