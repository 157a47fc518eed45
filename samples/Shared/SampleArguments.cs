using System.CommandLine;
using System.CommandLine.Help;
using DeepSpeedSharp.CommandLine;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// The options every sample trainer takes, on its System.CommandLine root command: DeepSpeed's own
/// (<see cref="DeepSpeed.AddConfigArguments"/>: <c>--deepspeed</c>, <c>--deepspeed_config</c>, <c>--local_rank</c>), then
/// steps, seed, data, weights, checkpoints, activation checkpointing and pipeline stages. A sample adds its model's
/// options to the same command and parses with <see cref="Parse"/>.
/// </summary>
public sealed class SampleArguments
{
    private readonly DeepSpeedArguments deepSpeed;
    private readonly Option<int> steps, seed, warmupSteps, saveEvery, pipeline, checkpointActivations;
    private readonly Option<int?> microBatch;
    private readonly Option<string?> initWeights, saveWeights, data, lossLog, saveDir, resume;
    private readonly Option<string> dataOrder;

    /// <param name="root">The sample's command.</param>
    /// <param name="defaultSteps">Its default <c>--steps</c>.</param>
    /// <param name="wholeModelWeights">Whether the sample offers <c>--init-weights</c> / <c>--save-weights</c>.</param>
    /// <param name="pipeline">Whether it offers <c>--pipeline-model-parallel-size</c>.</param>
    public SampleArguments(RootCommand root, int defaultSteps, bool wholeModelWeights = true, bool pipeline = true)
    {
        deepSpeed = DeepSpeed.AddConfigArguments(root);
        steps = Add(root, TrainerOptions.Int("--steps", "Optimizer steps in total", defaultSteps, min: 0));
        seed = Add(root, TrainerOptions.Int("--seed", "Model initialisation and data order", 1234, min: 0));
        microBatch = Add(root, TrainerOptions.OptionalInt("--micro-batch", "Overrides the config's micro-batch size per rank"));
        initWeights = AddIf(wholeModelWeights, root, TrainerOptions.Text("--init-weights", "FILE", "Whole-model safetensors weights loaded after initialisation"));
        saveWeights = AddIf(wholeModelWeights, root, TrainerOptions.Text("--save-weights", "FILE", "The trained weights as one whole-model safetensors file (rank 0 writes)"));
        data = Add(root, TrainerOptions.Text("--data", "FILE", "Train on this file instead of the shipped data"));
        dataOrder = Add(root, TrainerOptions.Choice("--data-order", "The order of the training windows", "random", "random", "sequential"));
        lossLog = Add(root, TrainerOptions.Text("--loss-log", "FILE", "Rank 0 writes one JSON line {step, loss, lr, grad_norm} per step"));
        warmupSteps = Add(root, TrainerOptions.Int("--warmup-steps", "Steps left out of the tokens/s median", 3, min: 0));
        checkpointActivations = Add(root, CheckpointInterval());
        saveDir = Add(root, TrainerOptions.Text("--save-dir", "DIR", "Engine checkpoints go here"));
        saveEvery = Add(root, TrainerOptions.Int("--save-every", "Save a checkpoint every K steps (and at the end); needs --save-dir", 0, min: 0, valueName: "K"));
        resume = Add(root, TrainerOptions.Text("--resume", "DIR", "Continue from the latest checkpoint of DIR (or from a tag directory)"));
        this.pipeline = AddIf(pipeline, root, TrainerOptions.Int("--pipeline-model-parallel-size", "Pipeline stages (the ranks divided by it are the data-parallel size)", 1));
    }

    /// <summary>Parses the sample's command line; null when <c>--help</c> was asked for (and printed).</summary>
    /// <exception cref="ArgumentException">One line: an unknown option, a bad value, or --save-every without --save-dir.</exception>
    public static ParseResult? Parse(RootCommand root, IReadOnlyList<string> args)
    {
        var result = TrainerCommandLine.Parse(root, args);
        if (result.Action is HelpAction)
        {
            result.Invoke();
            return null;
        }
        return result;
    }

    /// <summary>The values of a parsed command line.</summary>
    public SampleArgumentValues Read(ParseResult r)
    {
        var values = new SampleArgumentValues(deepSpeed.Read(r), r.GetValue(steps), r.GetValue(seed), r.GetValue(microBatch), r.GetValue(initWeights),
            r.GetValue(saveWeights), r.GetValue(data), r.GetValue(dataOrder) == "sequential", r.GetValue(lossLog), r.GetValue(warmupSteps),
            CheckpointEvery(r), r.GetValue(saveDir), r.GetValue(saveEvery), r.GetValue(resume), r.GetValue(pipeline));
        if (values.SaveEvery > 0 && values.SaveDir == null) throw new ArgumentException("--save-every needs --save-dir DIR");
        return values;
    }

    /// <summary>The flag alone means every block (System.CommandLine does not call the parser for an option without a value).</summary>
    private int CheckpointEvery(ParseResult r) =>
        r.GetResult(checkpointActivations) is { Implicit: false, Tokens.Count: 0 } ? 1 : r.GetValue(checkpointActivations);

    /// <summary>An option the sample does not offer is not added (and reads as its default).</summary>
    private static Option<T> AddIf<T>(bool offered, RootCommand root, Option<T> option) => offered ? Add(root, option) : option;

    private static Option<T> Add<T>(RootCommand root, Option<T> option)
    {
        root.Options.Add(option);
        return option;
    }

    /// <summary><c>--checkpoint-activations [K]</c>: a flag (every block, K = 1) or followed by the number of blocks per checkpoint.</summary>
    private static Option<int> CheckpointInterval()
    {
        const string requirement = "a positive number of blocks per checkpoint";
        var option = new Option<int>("--checkpoint-activations")
        {
            Description = "Checkpoint the blocks' activations, every K blocks (alone: every block)",
            HelpName = "K",
            Arity = ArgumentArity.ZeroOrOne,
            DefaultValueFactory = _ => 0,
            CustomParser = r =>
            {
                if (int.TryParse(r.Tokens[0].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k) && k >= 1) return k;
                r.AddError($"--checkpoint-activations needs {requirement}, got '{r.Tokens[0].Value}'");
                return 0;
            },
        };
        return option;
    }
}

/// <summary>The common options' values (see <see cref="SampleArguments"/>).</summary>
public sealed record SampleArgumentValues(DeepSpeedArgumentValues DeepSpeed, int Steps, int Seed, int? MicroBatch, string? InitWeights,
    string? SaveWeights, string? Data, bool SequentialData, string? LossLog, int WarmupSteps, int CheckpointActivations, string? SaveDir,
    int SaveEvery, string? Resume, int PipelineModelParallelSize);
