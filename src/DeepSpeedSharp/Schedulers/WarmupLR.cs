using TorchSharp;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// DeepSpeed's <c>WarmupLR</c>: rises from <c>warmup_min_lr</c> to <c>warmup_max_lr</c> over <c>warmup_num_steps</c>
/// steps, then stays at <c>warmup_max_lr</c>.
/// </summary>
/// <remarks>
/// At iteration i (<see cref="LrScheduler.LastBatchIteration"/>) with n = max(2, warmup_num_steps):
/// lr = min + (max − min)·γ, where γ = ln(i + 1) / ln(n) ("log") or i / n ("linear") while i &lt; n, and 1 after.
/// Before the first step (i = −1) lr = min. So with the log warm-up the first two optimizer steps both run at min.
/// </remarks>
public class WarmupLR : LrScheduler
{
    private readonly double[] _minLrs;
    private readonly double[] _deltaLrs;

    /// <summary>Creates the schedule; a fresh one (lastBatchIteration −1) sets every group's lr to <paramref name="warmupMinLr"/>.</summary>
    /// <param name="optimizer">The optimizer to drive.</param>
    /// <param name="warmupMinLr"><c>warmup_min_lr</c> (default 0).</param>
    /// <param name="warmupMaxLr"><c>warmup_max_lr</c>; null (DeepSpeed's default for WarmupLR) takes the first parameter
    /// group's current learning rate, i.e. the optimizer's <c>lr</c>.</param>
    /// <param name="warmupNumSteps"><c>warmup_num_steps</c> (default 1000; values below 2 act as 2, as in DeepSpeed).</param>
    /// <param name="warmupType"><c>warmup_type</c>: "log" (default) or "linear".</param>
    /// <param name="lastBatchIteration"><c>last_batch_iteration</c> (default −1).</param>
    public WarmupLR(torch.optim.Optimizer optimizer, double warmupMinLr = 0.0, double? warmupMaxLr = null,
        int warmupNumSteps = 1000, string warmupType = "log", int lastBatchIteration = -1)
        : base(optimizer, lastBatchIteration)
    {
        RequirePositive("warmup_num_steps", warmupNumSteps);
        WarmupType = Warmup.Parse(warmupType);
        var max = warmupMaxLr ?? Groups[0].LearningRate;
        RequireFiniteNonNegative("warmup_min_lr", warmupMinLr);
        RequireFiniteNonNegative("warmup_max_lr", max);
        WarmupMinLr = warmupMinLr;
        WarmupMaxLr = max;
        WarmupNumSteps = Warmup.EffectiveSteps(warmupNumSteps);
        _minLrs = PerGroup(warmupMinLr);
        _deltaLrs = PerGroup(max - warmupMinLr);
        if (lastBatchIteration == -1) ApplyLr(GetLr());
    }

    /// <summary><c>warmup_min_lr</c>.</summary>
    public double WarmupMinLr { get; }

    /// <summary><c>warmup_max_lr</c> (resolved from the optimizer when it was null).</summary>
    public double WarmupMaxLr { get; }

    /// <summary>The effective warm-up length, max(2, <c>warmup_num_steps</c>).</summary>
    public int WarmupNumSteps { get; }

    /// <summary><c>warmup_type</c>.</summary>
    public WarmupType WarmupType { get; }

    /// <inheritdoc/>
    public override double[] GetLr()
    {
        if (LastBatchIteration < 0) return (double[])_minLrs.Clone();
        var gamma = Gamma();
        return _minLrs.Select((min, i) => min + _deltaLrs[i] * gamma).ToArray();
    }

    /// <summary>The fraction of (max − min) added to min at <see cref="LrScheduler.LastBatchIteration"/> (≥ 0).</summary>
    protected virtual double Gamma() =>
        LastBatchIteration < WarmupNumSteps ? Warmup.Fraction(WarmupType, LastBatchIteration, WarmupNumSteps) : 1.0;

    /// <summary>Checks that a learning-rate key is finite and not negative.</summary>
    protected static void RequireFiniteNonNegative(string key, double value)
    {
        RequireFinite(key, value);
        if (value < 0) throw new ArgumentException($"{key} must be >= 0, got {value}.", key);
    }
}
