using System.CommandLine;
using System.CommandLine.Help;
using DeepSpeedSharp.CommandLine;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// The options every sample takes, on its System.CommandLine root command: DeepSpeed's own
/// (<see cref="DeepSpeed.AddConfigArguments"/>: <c>--deepspeed</c>, <c>--deepspeed_config</c>, <c>--local_rank</c>), then
/// steps, seed, data, weights, checkpoints, activation checkpointing and pipeline stages, as properties. A sample's own
/// options class derives from it, adds its model's options to the command and calls <see cref="ParseCommon"/>.
/// </summary>
public abstract class SampleOptions
{
    /// <summary><c>--deepspeed_config FILE</c>: the DeepSpeed JSON config (default: the sample's built-in one).</summary>
    public string? DeepSpeedConfig { get; private set; }
    /// <summary><c>--local_rank N</c>: passed by launchers; accepted, the environment says the same.</summary>
    public int? LocalRank { get; private set; }
    /// <summary><c>--steps N</c>: optimizer steps in total.</summary>
    public int Steps { get; private set; }
    /// <summary><c>--seed N</c>: model initialisation and data order.</summary>
    public int Seed { get; private set; } = 1234;
    /// <summary><c>--micro-batch N</c>: overrides the config's micro-batch size per rank.</summary>
    public int? MicroBatch { get; private set; }
    /// <summary><c>--init-weights FILE</c>: whole-model safetensors weights loaded after initialisation (each tensor rank reads its slices).</summary>
    public string? InitWeights { get; private set; }
    /// <summary><c>--save-weights FILE</c>: the trained weights as one whole-model safetensors file (slices and stages gathered, rank 0 writes).</summary>
    public string? SaveWeights { get; private set; }
    /// <summary><c>--data FILE</c>: a file to train on instead of the shipped data.</summary>
    public string? Data { get; private set; }
    /// <summary><c>--data-order sequential|random</c> (default random).</summary>
    public bool SequentialData { get; private set; }
    /// <summary><c>--loss-log FILE</c>: rank 0 writes one JSON line {step, loss, lr, grad_norm} per step.</summary>
    public string? LossLog { get; private set; }
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
    /// <summary><c>--pipeline-model-parallel-size N</c> (default 1): N &gt; 1 splits the model into N pipeline stages
    /// trained with <c>TrainBatch</c>; the ranks divided by N are the data-parallel size.</summary>
    public int PipelineModelParallelSize { get; private set; } = 1;
    /// <summary>True when <c>--help</c> was given (the help is printed; the options keep their defaults).</summary>
    public bool HelpShown { get; private set; }

    /// <summary>
    /// Adds the shared options to <paramref name="root"/> (which holds the sample's own), parses <paramref name="args"/>
    /// and sets the shared properties; null after printing <c>--help</c>.
    /// </summary>
    /// <param name="root">The sample's command, with its own options.</param>
    /// <param name="args">The command line.</param>
    /// <param name="defaultSteps">The sample's default <c>--steps</c>.</param>
    /// <param name="wholeModelWeights">Whether the sample offers <c>--init-weights</c> / <c>--save-weights</c>.</param>
    /// <param name="pipeline">Whether it offers <c>--pipeline-model-parallel-size</c>.</param>
    /// <exception cref="ArgumentException">One line: an unknown option, a bad value, or --save-every without --save-dir.</exception>
    protected ParseResult? ParseCommon(RootCommand root, IReadOnlyList<string> args, int defaultSteps, bool wholeModelWeights = true, bool pipeline = true)
    {
        var deepSpeed = DeepSpeed.AddConfigArguments(root);
        var steps = Add(root, TrainerOptions.Int("--steps", "Optimizer steps in total", defaultSteps, min: 0));
        var seed = Add(root, TrainerOptions.Int("--seed", "Model initialisation and data order", Seed, min: 0));
        var microBatch = Add(root, TrainerOptions.OptionalInt("--micro-batch", "Overrides the config's micro-batch size per rank"));
        var initWeights = AddIf(wholeModelWeights, root, TrainerOptions.Text("--init-weights", "FILE", "Whole-model safetensors weights loaded after initialisation"));
        var saveWeights = AddIf(wholeModelWeights, root, TrainerOptions.Text("--save-weights", "FILE", "The trained weights as one whole-model safetensors file (rank 0 writes)"));
        var data = Add(root, TrainerOptions.Text("--data", "FILE", "Train on this file instead of the shipped data"));
        var dataOrder = Add(root, TrainerOptions.Choice("--data-order", "The order of the training windows", "random", "random", "sequential"));
        var lossLog = Add(root, TrainerOptions.Text("--loss-log", "FILE", "Rank 0 writes one JSON line {step, loss, lr, grad_norm} per step"));
        var warmupSteps = Add(root, TrainerOptions.Int("--warmup-steps", "Steps left out of the tokens/s median", WarmupSteps, min: 0));
        var checkpointActivations = Add(root, CheckpointInterval());
        var saveDir = Add(root, TrainerOptions.Text("--save-dir", "DIR", "Engine checkpoints go here"));
        var saveEvery = Add(root, TrainerOptions.Int("--save-every", "Save a checkpoint every K steps (and at the end); needs --save-dir", 0, min: 0, valueName: "K"));
        var resume = Add(root, TrainerOptions.Text("--resume", "DIR", "Continue from the latest checkpoint of DIR (or from a tag directory)"));
        var stages = AddIf(pipeline, root, TrainerOptions.Int("--pipeline-model-parallel-size", "Pipeline stages (the ranks divided by it are the data-parallel size)", 1));
        Steps = defaultSteps;
        var r = TrainerCommandLine.Parse(root, args);
        if (r.Action is HelpAction)
        {
            r.Invoke();
            HelpShown = true;
            return null;
        }
        (DeepSpeedConfig, LocalRank) = (r.GetValue(deepSpeed.Config), r.GetValue(deepSpeed.LocalRank));
        (Steps, Seed, MicroBatch, InitWeights, SaveWeights, Data) =
            (r.GetValue(steps), r.GetValue(seed), r.GetValue(microBatch), r.GetValue(initWeights), r.GetValue(saveWeights), r.GetValue(data));
        (SequentialData, LossLog, WarmupSteps, SaveDir, SaveEvery, Resume, PipelineModelParallelSize) =
            (r.GetValue(dataOrder) == "sequential", r.GetValue(lossLog), r.GetValue(warmupSteps), r.GetValue(saveDir), r.GetValue(saveEvery),
             r.GetValue(resume), r.GetValue(stages));
        // The flag alone means every block (System.CommandLine does not call the parser for an option without a value).
        CheckpointActivations = r.GetResult(checkpointActivations) is { Implicit: false, Tokens.Count: 0 } ? 1 : r.GetValue(checkpointActivations);
        if (SaveEvery > 0 && SaveDir == null) throw new ArgumentException("--save-every needs --save-dir DIR");
        return r;
    }

    /// <summary>Adds one of the sample's own options to its command.</summary>
    protected static Option<T> Add<T>(RootCommand root, Option<T> option)
    {
        root.Options.Add(option);
        return option;
    }

    /// <summary>An option the sample does not offer is not added (and reads as its default).</summary>
    private static Option<T> AddIf<T>(bool offered, RootCommand root, Option<T> option) => offered ? Add(root, option) : option;

    /// <summary><c>--checkpoint-activations [K]</c>: a flag (every block, K = 1) or followed by the number of blocks per checkpoint.</summary>
    private static Option<int> CheckpointInterval() => new("--checkpoint-activations")
    {
        Description = "Checkpoint the blocks' activations, every K blocks (alone: every block)",
        HelpName = "K",
        Arity = ArgumentArity.ZeroOrOne,
        DefaultValueFactory = _ => 0,
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0) return 1;
            if (int.TryParse(r.Tokens[0].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k) && k >= 1) return k;
            r.AddError($"--checkpoint-activations needs a positive number of blocks per checkpoint, got '{r.Tokens[0].Value}'");
            return 0;
        },
    };
}
