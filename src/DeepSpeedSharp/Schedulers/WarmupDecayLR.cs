using TorchSharp;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// DeepSpeed's <c>WarmupDecayLR</c>: the warm-up of <see cref="WarmupLR"/>, then a linear decay to 0 at
/// <c>total_num_steps</c>.
/// </summary>
/// <remarks>
/// After the warm-up (i ≥ n, n = max(2, warmup_num_steps)): γ = max(0, (total − i) / max(1, total − n)), and
/// lr = min + (max − min)·γ — so the decay ends at <c>warmup_min_lr</c> at i = total and stays there.
/// A total below the warm-up length is allowed with a warning, as in DeepSpeed.
/// </remarks>
public class WarmupDecayLR : WarmupLR
{
    /// <summary>Creates the schedule; a fresh one sets every group's lr to <paramref name="warmupMinLr"/>.</summary>
    /// <param name="optimizer">The optimizer to drive.</param>
    /// <param name="totalNumSteps"><c>total_num_steps</c> (required, positive).</param>
    /// <param name="warmupMinLr"><c>warmup_min_lr</c> (default 0).</param>
    /// <param name="warmupMaxLr"><c>warmup_max_lr</c> (default 0.001; null takes the optimizer's lr).</param>
    /// <param name="warmupNumSteps"><c>warmup_num_steps</c> (default 1000).</param>
    /// <param name="warmupType"><c>warmup_type</c>: "log" (default) or "linear".</param>
    /// <param name="lastBatchIteration"><c>last_batch_iteration</c> (default −1).</param>
    public WarmupDecayLR(torch.optim.Optimizer optimizer, int totalNumSteps, double warmupMinLr = 0.0,
        double? warmupMaxLr = 0.001, int warmupNumSteps = 1000, string warmupType = "log", int lastBatchIteration = -1)
        : base(optimizer, warmupMinLr, warmupMaxLr, warmupNumSteps, warmupType, lastBatchIteration)
    {
        RequirePositive("total_num_steps", totalNumSteps);
        TotalNumSteps = totalNumSteps;
        if (totalNumSteps < WarmupNumSteps)
            Warn($"total_num_steps {totalNumSteps} is less than warmup_num_steps {warmupNumSteps}");
    }

    /// <summary><c>total_num_steps</c>.</summary>
    public int TotalNumSteps { get; }

    /// <inheritdoc/>
    protected override double Gamma()
    {
        if (LastBatchIteration < WarmupNumSteps) return base.Gamma();
        return Math.Max(0.0, (double)(TotalNumSteps - LastBatchIteration) / Math.Max(1.0, TotalNumSteps - WarmupNumSteps));
    }
}
