using System.Globalization;
using TorchSharp;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// Base of DeepSpeed's learning-rate schedules (<c>deepspeed/runtime/lr_schedules.py</c>): drives the
/// <see cref="torch.optim.ILearningRateController.LearningRate"/> of every parameter group of a TorchSharp optimizer.
/// </summary>
/// <remarks>
/// <para>DeepSpeed's iteration semantics: <see cref="LastBatchIteration"/> starts at −1 (a fresh schedule) and each
/// <see cref="Step"/> increments it, then writes <see cref="GetLr"/> into the optimizer. Constructing a fresh schedule
/// already writes the learning rate for the first optimizer step (for the warm-up schedules that is the value at
/// iteration −1, i.e. the minimum), so the engine calls <see cref="Step"/> once <b>after</b> each optimizer step.</para>
/// <para>A schedule constructed with <c>lastBatchIteration</c> other than −1 (resuming) leaves the optimizer untouched
/// until the first <see cref="Step"/>, as DeepSpeed does.</para>
/// </remarks>
public abstract class LrScheduler
{
    private readonly List<string> _warnings = new();
    private double[]? _lastLr;

    /// <summary>Binds the schedule to <paramref name="optimizer"/>.</summary>
    /// <param name="optimizer">The optimizer whose parameter groups are driven; must have at least one group.</param>
    /// <param name="lastBatchIteration">The index of the last batch (−1 for a fresh schedule); DeepSpeed
    /// <c>last_batch_iteration</c>.</param>
    protected LrScheduler(torch.optim.Optimizer optimizer, int lastBatchIteration)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (lastBatchIteration < -1)
            throw new ArgumentException($"last_batch_iteration must be >= -1, got {lastBatchIteration}.", nameof(lastBatchIteration));
        Optimizer = optimizer;
        Groups = optimizer.ParamGroups.ToList();
        if (Groups.Count == 0) throw new ArgumentException("the optimizer has no parameter groups to schedule.", nameof(optimizer));
        LastBatchIteration = lastBatchIteration;
    }

    /// <summary>The optimizer being driven.</summary>
    public torch.optim.Optimizer Optimizer { get; private set; }

    /// <summary>The optimizer's parameter groups, in order.</summary>
    protected IReadOnlyList<torch.optim.ILearningRateController> Groups { get; private set; }

    /// <summary>
    /// Drives <paramref name="replacement"/> from now on: the optimizer the engine built from the user's optimizer this
    /// schedule was made for (same type and groups, over the engine's partitions). The schedule's state is kept.
    /// </summary>
    internal void Drive(torch.optim.Optimizer replacement)
    {
        var groups = replacement.ParamGroups.ToList();
        if (groups.Count != Groups.Count)
            throw new ArgumentException($"{GetType().Name} drives {Groups.Count} param groups, the engine's optimizer has {groups.Count}");
        Optimizer = replacement;
        Groups = groups;
    }

    /// <summary>The index of the last batch the schedule was stepped to (−1 before the first <see cref="Step"/>).</summary>
    public int LastBatchIteration { get; protected set; }

    /// <summary>Conditions DeepSpeed only logs a warning about (e.g. total_num_steps below warmup_num_steps);
    /// the engine should log them.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>The learning rate of every parameter group at <see cref="LastBatchIteration"/>.</summary>
    public abstract double[] GetLr();

    /// <summary>The learning rates last written to the optimizer.</summary>
    /// <exception cref="InvalidOperationException">Nothing has been written yet (call <see cref="Step"/> first).</exception>
    public double[] GetLastLr() =>
        (double[])(_lastLr ?? throw new InvalidOperationException(
            $"{GetType().Name}: no learning rate has been computed yet; call Step() first.")).Clone();

    /// <summary>Advances to <paramref name="batchIteration"/> (default: <see cref="LastBatchIteration"/> + 1) and writes
    /// the learning rates into the optimizer. Call once after each optimizer step.</summary>
    public virtual void Step(int? batchIteration = null)
    {
        var next = batchIteration ?? LastBatchIteration + 1;
        if (next < -1) throw new ArgumentException($"batch iteration must be >= -1, got {next}.", nameof(batchIteration));
        LastBatchIteration = next;
        ApplyLr(GetLr());
    }

    /// <summary>The schedule's checkpoint state (DeepSpeed saves <c>{'last_batch_iteration': n}</c>).</summary>
    public LrSchedulerState StateDict() => new(LastBatchIteration);

    /// <summary>Restores <see cref="LastBatchIteration"/>; as in DeepSpeed the optimizer's learning rate is not
    /// rewritten until the next <see cref="Step"/> (the optimizer's own state carries it).</summary>
    public void LoadStateDict(LrSchedulerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.LastBatchIteration < -1)
            throw new ArgumentException($"last_batch_iteration must be >= -1, got {state.LastBatchIteration}.", nameof(state));
        LastBatchIteration = state.LastBatchIteration;
    }

    /// <summary>Restores from a DeepSpeed-style dictionary (e.g. read from a checkpoint's <c>lr_scheduler</c> entry).</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, object?> state) => LoadStateDict(LrSchedulerState.FromDictionary(state));

    /// <summary>Writes one learning rate per parameter group into the optimizer and remembers them for <see cref="GetLastLr"/>.</summary>
    protected void ApplyLr(double[] lrs)
    {
        if (lrs.Length != Groups.Count)
            throw new InvalidOperationException($"{GetType().Name} computed {lrs.Length} learning rates for {Groups.Count} parameter groups.");
        for (var i = 0; i < lrs.Length; i++) Groups[i].LearningRate = lrs[i];
        _lastLr = (double[])lrs.Clone();
    }

    /// <summary>Records a warning (see <see cref="Warnings"/>).</summary>
    protected void Warn(string message) => _warnings.Add(message);

    /// <summary>The same value for every parameter group.</summary>
    protected double[] PerGroup(double value) => Enumerable.Repeat(value, Groups.Count).ToArray();

    /// <summary>Checks that a DeepSpeed step-count key is a positive integer.</summary>
    protected static void RequirePositive(string key, int value)
    {
        if (value <= 0) throw new ArgumentException($"{key} must be a positive integer, got {value}.", key);
    }

    /// <summary>Checks that a DeepSpeed numeric key is finite.</summary>
    protected static void RequireFinite(string key, double value)
    {
        if (!double.IsFinite(value))
            throw new ArgumentException($"{key} must be a finite number, got {value.ToString(CultureInfo.InvariantCulture)}.", key);
    }
}
