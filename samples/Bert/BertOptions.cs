using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Samples.Shared;

namespace DeepSpeedSharp.Samples.Bert;

/// <summary>
/// Command-line options of the BERT sample. Unknown options are errors that list the known ones; every error is one
/// line naming the option. The vocabulary size is not an option: it comes from the data (see
/// <see cref="Data.BertVocabulary"/>).
/// </summary>
public sealed class BertOptions
{
    /// <summary>The model's shape; its <see cref="BertConfig.Vocab"/> is set by the trainer from the data.</summary>
    public BertConfig Model { get; private set; } = new();
    /// <summary><c>--deepspeed_config FILE</c>: the DeepSpeed JSON config (default: <see cref="Trainer.DefaultConfig"/>).</summary>
    public string? DeepSpeedConfig { get; private set; }
    /// <summary><c>--steps N</c>: optimizer steps in total (default 50).</summary>
    public int Steps { get; private set; } = 50;
    /// <summary><c>--seed N</c>: model initialisation, data order and masks.</summary>
    public int Seed { get; private set; } = 1234;
    /// <summary><c>--micro-batch N</c>: overrides the config's micro-batch size per rank.</summary>
    public int? MicroBatch { get; private set; }
    /// <summary><c>--data FILE</c>: a UTF-8 text file to train on instead of the shipped corpus.</summary>
    public string? Data { get; private set; }
    /// <summary><c>--data-order sequential|random</c> (default random).</summary>
    public bool SequentialData { get; private set; }
    /// <summary><c>--loss-log FILE</c>: rank 0 writes one JSON line {step, loss, lr, grad_norm} per step.</summary>
    public string? LossLog { get; private set; }
    /// <summary><c>--local_rank N</c>: passed by launchers; accepted, the environment says the same.</summary>
    public int? LocalRank { get; private set; }
    /// <summary><c>--warmup-steps N</c>: steps left out of the tokens/s median (not the learning-rate warm-up, which is the config's scheduler).</summary>
    public int WarmupSteps { get; private set; } = 3;
    /// <summary><c>--checkpoint-activations</c>: checkpoint the encoder layers (the guide's <c>checkpointed_forward</c>).</summary>
    public bool CheckpointActivations { get; private set; }
    /// <summary><c>--checkpoint-activations-interval K</c>: layers per checkpointed chunk (default 1).</summary>
    public int CheckpointActivationsInterval { get; private set; } = 1;
    /// <summary>0 without <c>--checkpoint-activations</c>, else <see cref="CheckpointActivationsInterval"/>.</summary>
    public int CheckpointInterval => CheckpointActivations ? CheckpointActivationsInterval : 0;
    /// <summary><c>--save-dir DIR</c>: engine checkpoints go here.</summary>
    public string? SaveDir { get; private set; }
    /// <summary><c>--save-every K</c>: save a checkpoint every K steps (and at the end).</summary>
    public int SaveEvery { get; private set; }
    /// <summary><c>--resume DIR</c>: continue from the latest checkpoint of DIR (or from a tag directory).</summary>
    public string? Resume { get; private set; }

    private static readonly string[] Known =
    {
        "--d-model", "--layers", "--heads", "--ffn-hidden", "--seq", "--dropout",
        "--deepspeed_config", "--deepspeed", "--steps", "--seed", "--micro-batch", "--data", "--data-order", "--loss-log",
        "--local_rank", "--warmup-steps", "--checkpoint-activations", "--checkpoint-activations-interval",
        "--save-dir", "--save-every", "--resume",
    };

    /// <summary>Options that take no value.</summary>
    private static readonly string[] Switches = { "--deepspeed", "--checkpoint-activations" };

    /// <summary>Parses <c>--name value</c> and <c>--name=value</c> forms.</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or bad value, or an impossible model shape.</exception>
    public static BertOptions Parse(string[] args)
    {
        var o = new BertOptions();
        var m = o.Model;
        bool intervalGiven = false;
        var r = new OptionReader(args, Known, Switches);
        while (r.Next())
        {
            switch (r.Name)
            {
                case "--deepspeed": break; // DeepSpeed's marker flag, nothing to do
                case "--checkpoint-activations": o.CheckpointActivations = true; break;
                case "--d-model": m = m with { DModel = r.Int() }; break;
                case "--layers": m = m with { Layers = r.Int() }; break;
                case "--heads": m = m with { Heads = r.Int() }; break;
                case "--ffn-hidden": m = m with { FfnHidden = r.Int() }; break;
                case "--seq": m = m with { Seq = r.Int(min: 3) }; break;
                case "--dropout": m = m with { Dropout = r.Double() }; break;
                case "--deepspeed_config": o.DeepSpeedConfig = r.Value(); break;
                case "--steps": o.Steps = r.Int(min: 0); break;
                case "--seed": o.Seed = r.Int(min: 0); break;
                case "--micro-batch": o.MicroBatch = r.Int(); break;
                case "--data": o.Data = r.Value(); break;
                case "--data-order":
                    var order = r.Value();
                    o.SequentialData = order switch
                    {
                        "sequential" => true,
                        "random" => false,
                        _ => throw new ArgumentException($"--data-order must be 'sequential' or 'random', got '{order}'"),
                    };
                    break;
                case "--loss-log": o.LossLog = r.Value(); break;
                case "--local_rank": o.LocalRank = r.Int(min: 0); break;
                case "--warmup-steps": o.WarmupSteps = r.Int(min: 0); break;
                case "--checkpoint-activations-interval": o.CheckpointActivationsInterval = r.Int(); intervalGiven = true; break;
                case "--save-dir": o.SaveDir = r.Value(); break;
                case "--save-every": o.SaveEvery = r.Int(min: 0); break;
                case "--resume": o.Resume = r.Value(); break;
            }
        }
        m.Validate();
        if (intervalGiven && !o.CheckpointActivations)
            throw new ArgumentException("--checkpoint-activations-interval needs --checkpoint-activations (which turns checkpointing on)");
        if (o.CheckpointActivationsInterval > m.Layers)
            throw new ArgumentException($"--checkpoint-activations-interval {o.CheckpointActivationsInterval} is more than --layers {m.Layers}");
        if (o.SaveEvery > 0 && o.SaveDir == null) throw new ArgumentException("--save-every needs --save-dir DIR");
        o.Model = m;
        return o;
    }
}
