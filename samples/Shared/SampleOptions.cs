using System.CommandLine;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// The options every sample takes (see <see cref="SampleArguments"/>), as properties; a sample's own options class
/// derives from it, adds its model's options to the command and calls <see cref="ParseCommon"/>.
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
    /// <exception cref="ArgumentException">One line: an unknown option, a bad value, or --save-every without --save-dir.</exception>
    protected ParseResult? ParseCommon(RootCommand root, IReadOnlyList<string> args, int defaultSteps, bool wholeModelWeights = true, bool pipeline = true)
    {
        var common = new SampleArguments(root, defaultSteps, wholeModelWeights, pipeline);
        Steps = defaultSteps;
        if (SampleArguments.Parse(root, args) is not { } r)
        {
            HelpShown = true;
            return null;
        }
        var c = common.Read(r);
        (DeepSpeedConfig, LocalRank, Steps, Seed, MicroBatch, InitWeights, SaveWeights, Data) =
            (c.DeepSpeed.DeepSpeedConfig, c.DeepSpeed.LocalRank, c.Steps, c.Seed, c.MicroBatch, c.InitWeights, c.SaveWeights, c.Data);
        (SequentialData, LossLog, WarmupSteps, CheckpointActivations, SaveDir, SaveEvery, Resume, PipelineModelParallelSize) =
            (c.SequentialData, c.LossLog, c.WarmupSteps, c.CheckpointActivations, c.SaveDir, c.SaveEvery, c.Resume, c.PipelineModelParallelSize);
        return r;
    }

    /// <summary>Adds one of the sample's own options to its command.</summary>
    protected static Option<T> Add<T>(RootCommand root, Option<T> option)
    {
        root.Options.Add(option);
        return option;
    }
}
