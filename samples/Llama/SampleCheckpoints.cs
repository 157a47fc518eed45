using DeepSpeedSharp.Engine;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// The sample's checkpoint cycle: <c>--resume DIR</c> loads the latest checkpoint of DIR (or, when DIR is itself a tag
/// directory such as <c>ckpt/global_step3</c>, that tag) and training continues from
/// its step until <c>--steps</c> in total; <c>--save-dir DIR</c> saves every <c>--save-every K</c> steps and at the end.
/// Nothing else needs saving: the batch sampler is a pure function of the step, which the engine's GlobalSteps restores.
/// </summary>
public sealed class SampleCheckpoints
{
    private readonly LlamaOptions options;
    private readonly DeepSpeedEngine engine;
    private long lastSaved = -1;

    /// <param name="options">The sample's options (--resume, --save-dir, --save-every).</param>
    /// <param name="engine">The engine whose checkpoints these are.</param>
    public SampleCheckpoints(LlamaOptions options, DeepSpeedEngine engine)
    {
        this.options = options;
        this.engine = engine;
    }

    /// <summary>Loads the checkpoint named by --resume (if any) and returns the step to continue from.</summary>
    public long Resume()
    {
        if (options.Resume == null) return 0;
        string dir = options.Resume.TrimEnd('/');
        bool isTag = File.Exists(Path.Combine(dir, "checkpoint.json"));
        var (path, _) = isTag
            ? engine.LoadCheckpoint(Path.GetDirectoryName(Path.GetFullPath(dir))!, tag: Path.GetFileName(dir))
            : engine.LoadCheckpoint(dir);
        if (path == null) throw new InvalidOperationException($"--resume {options.Resume}: there is no 'latest' checkpoint in that directory");
        if (engine.GlobalRank == 0) Console.WriteLine($"llama: resumed from {path} at step {engine.GlobalSteps}");
        return engine.GlobalSteps;
    }

    /// <summary>Saves after every --save-every steps.</summary>
    public void AfterStep(long stepsDone)
    {
        if (options.SaveDir != null && options.SaveEvery > 0 && stepsDone % options.SaveEvery == 0) Save();
    }

    /// <summary>Saves at the end of training unless this step was just saved.</summary>
    public void AtEnd()
    {
        if (options.SaveDir != null && lastSaved != engine.GlobalSteps) Save();
    }

    private void Save()
    {
        engine.SaveCheckpoint(options.SaveDir!, clientState: new { step = engine.GlobalSteps });
        lastSaved = engine.GlobalSteps;
    }
}
