using TorchSharp;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// DeepSpeed's <c>WarmupCosineLR</c>: scales each parameter group's initial learning rate by a ratio that warms up from
/// <c>warmup_min_ratio</c> to 1 over <c>warmup_num_steps</c>, then follows a half cosine down to <c>cos_min_ratio</c> at
/// <c>total_num_steps</c>.
/// </summary>
/// <remarks>
/// With n = max(2, warmup_num_steps) and i = <see cref="LrScheduler.LastBatchIteration"/>:
/// warm-up (i &lt; n): ratio = warmup_min_ratio + (1 − warmup_min_ratio)·f, f = ln(i + 1)/ln(n) or i/n;
/// after: p = min(1, (i − n + 1) / max(1, total − n)), ratio = max(0, cos_min_ratio + (1 − cos_min_ratio)·(1 + cos(πp))/2).
/// lr = ratio × the group's learning rate when the schedule was built. Before the first step (i = −1) lr = 0
/// (DeepSpeed's behaviour, even when warmup_min_ratio &gt; 0).
/// </remarks>
public class WarmupCosineLR : LrScheduler
{
    private readonly double[] _orgLrs;

    /// <summary>Creates the schedule; the optimizer's current learning rates are the peak values.</summary>
    /// <param name="optimizer">The optimizer to drive.</param>
    /// <param name="totalNumSteps"><c>total_num_steps</c> (required, positive).</param>
    /// <param name="warmupMinRatio"><c>warmup_min_ratio</c> (default 0).</param>
    /// <param name="warmupNumSteps"><c>warmup_num_steps</c> (default 1000; below 2 acts as 2).</param>
    /// <param name="cosMinRatio"><c>cos_min_ratio</c> (default 1e-4).</param>
    /// <param name="warmupType"><c>warmup_type</c>: "log" (default) or "linear".</param>
    /// <param name="lastBatchIteration"><c>last_batch_iteration</c> (default −1).</param>
    public WarmupCosineLR(torch.optim.Optimizer optimizer, int totalNumSteps, double warmupMinRatio = 0.0,
        int warmupNumSteps = 1000, double cosMinRatio = 0.0001, string warmupType = "log", int lastBatchIteration = -1)
        : base(optimizer, lastBatchIteration)
    {
        RequirePositive("warmup_num_steps", warmupNumSteps);
        RequirePositive("total_num_steps", totalNumSteps);
        RequireFinite("warmup_min_ratio", warmupMinRatio);
        RequireFinite("cos_min_ratio", cosMinRatio);
        if (warmupMinRatio < 0) throw new ArgumentException($"warmup_min_ratio must be >= 0, got {warmupMinRatio}.", "warmup_min_ratio");
        if (cosMinRatio < 0) throw new ArgumentException($"cos_min_ratio must be >= 0, got {cosMinRatio}.", "cos_min_ratio");
        WarmupType = Warmup.Parse(warmupType);
        TotalNumSteps = totalNumSteps;
        WarmupMinRatio = warmupMinRatio;
        WarmupNumSteps = Warmup.EffectiveSteps(warmupNumSteps);
        CosMinRatio = cosMinRatio;
        if (totalNumSteps < WarmupNumSteps)
            Warn($"total_num_steps {totalNumSteps} is less than warmup_num_steps {warmupNumSteps}");
        _orgLrs = Groups.Select(g => g.LearningRate).ToArray();
        if (lastBatchIteration == -1) ApplyLr(GetLr());
    }

    /// <summary><c>total_num_steps</c>.</summary>
    public int TotalNumSteps { get; }

    /// <summary><c>warmup_min_ratio</c>.</summary>
    public double WarmupMinRatio { get; }

    /// <summary>The effective warm-up length, max(2, <c>warmup_num_steps</c>).</summary>
    public int WarmupNumSteps { get; }

    /// <summary><c>cos_min_ratio</c>.</summary>
    public double CosMinRatio { get; }

    /// <summary><c>warmup_type</c>.</summary>
    public WarmupType WarmupType { get; }

    /// <summary>The multiplier applied to the initial learning rates at <see cref="LrScheduler.LastBatchIteration"/>.</summary>
    public double GetLrRatio()
    {
        var i = LastBatchIteration;
        if (i < 0) return 0.0;
        if (i < WarmupNumSteps)
            return WarmupMinRatio + Warmup.Fraction(WarmupType, i, WarmupNumSteps) * (1.0 - WarmupMinRatio);
        var realLastStep = i - WarmupNumSteps + 1;
        var realTotalSteps = Math.Max(1, TotalNumSteps - WarmupNumSteps);
        var progress = Math.Min(1.0, (double)realLastStep / realTotalSteps);
        var ratio = (1 + Math.Cos(Math.PI * progress)) / 2;
        return Math.Max(0.0, CosMinRatio + (1.0 - CosMinRatio) * ratio);
    }

    /// <inheritdoc/>
    public override double[] GetLr()
    {
        if (LastBatchIteration < 0) return PerGroup(0.0);
        var ratio = GetLrRatio();
        return _orgLrs.Select(lr => lr * ratio).ToArray();
    }
}
