using DeepSpeedSharp.Engine;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// The sample's checkpoint cycle: <c>--resume DIR</c> loads the latest checkpoint of DIR (or, when DIR is itself a tag
/// directory such as <c>ckpt/global_step3</c>, that tag) and training continues from
/// its step until <c>--steps</c> in total; <c>--save-dir DIR</c> saves every <c>--save-every K</c> steps and at the end.
/// Nothing else needs saving: the batch sampler is a pure function of the step, which the engine's GlobalSteps restores.
/// </summary>
public sealed class SampleCheckpoints
{
    private readonly string name;
    private readonly string? resume, saveDir;
    private readonly int saveEvery;
    private readonly DeepSpeedEngine engine;
    private long lastSaved = -1;

    /// <param name="name">The sample's name, prefixed to its messages.</param>
    /// <param name="resume">--resume DIR (or a tag directory), or null.</param>
    /// <param name="saveDir">--save-dir DIR, or null.</param>
    /// <param name="saveEvery">--save-every K (0: only at the end).</param>
    /// <param name="engine">The engine whose checkpoints these are.</param>
    public SampleCheckpoints(string name, string? resume, string? saveDir, int saveEvery, DeepSpeedEngine engine)
    {
        this.name = name;
        this.resume = resume;
        this.saveDir = saveDir;
        this.saveEvery = saveEvery;
        this.engine = engine;
    }

    /// <summary>
    /// Loads the checkpoint named by --resume (if any) and returns the step to continue from. A job restarted by
    /// <c>dss launch --max_restarts</c> (<see cref="DeepSpeed.RestartCount"/> above 0) resumes from the latest checkpoint
    /// of --save-dir when there is one and --resume names none.
    /// </summary>
    public long Resume()
    {
        var resume = this.resume;
        if (resume == null && saveDir != null && DeepSpeed.RestartCount > 0 && File.Exists(Path.Combine(saveDir, "latest"))) resume = saveDir;
        if (resume == null) return 0;
        string dir = resume.TrimEnd('/');
        bool isTag = File.Exists(Path.Combine(dir, "checkpoint.json"));
        var (path, _) = isTag
            ? engine.LoadCheckpoint(Path.GetDirectoryName(Path.GetFullPath(dir))!, tag: Path.GetFileName(dir))
            : engine.LoadCheckpoint(dir);
        if (path == null) throw new InvalidOperationException($"--resume {resume}: there is no 'latest' checkpoint in that directory");
        if (engine.GlobalRank == 0) Console.WriteLine($"{name}: resumed from {path} at step {engine.GlobalSteps}");
        return engine.GlobalSteps;
    }

    /// <summary>Saves after every --save-every steps.</summary>
    public void AfterStep(long stepsDone)
    {
        if (saveDir != null && saveEvery > 0 && stepsDone % saveEvery == 0) Save();
    }

    /// <summary>Saves at the end of training unless this step was just saved.</summary>
    public void AtEnd()
    {
        if (saveDir != null && lastSaved != engine.GlobalSteps) Save();
    }

    private void Save()
    {
        engine.SaveCheckpoint(saveDir!, clientState: new { step = engine.GlobalSteps });
        lastSaved = engine.GlobalSteps;
    }
}
