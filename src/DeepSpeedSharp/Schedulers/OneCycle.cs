using TorchSharp;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// DeepSpeed's <c>OneCycle</c> (1Cycle) schedule: one triangular cycle of the learning rate between
/// <c>cycle_min_lr</c> and <c>cycle_max_lr</c> (and, inversely, of β1 between <c>cycle_max_mom</c> and
/// <c>cycle_min_mom</c>), then an optional decay.
/// </summary>
/// <remarks>
/// <para>With i = <see cref="LrScheduler.LastBatchIteration"/>, b = i + 1, T = first + second step size,
/// r = first / T: x = 1 + b/T − floor(1 + b/T); scale = x / r when x ≤ r, else (x − 1)/(r − 1). With a stair count
/// s &gt; 0 for that half, scale = floor(position·s)/s where position is b mod T over the first half, or the distance to
/// the cycle's end over the second. During the cycle (i &lt; T): lr = min + (max − min)·scale and
/// β1 = max_mom − (max_mom − min_mom)·scale. After it, with d = i − T + 1: lr = min / (1 + decay_lr_rate·d/decay_step_size)
/// and β1 = max_mom·(1 + decay_mom_rate·d/decay_step_size); without decay (rate or decay_step_size 0) they stay at
/// min_lr / max_mom.</para>
/// <para>Momentum cycling needs an optimizer with betas (Adam-style: <see cref="torch.optim.IBetas"/> on the optimizer
/// and its groups); otherwise it is switched off with a warning, as DeepSpeed does (so SGD's momentum is not cycled).
/// As in DeepSpeed, a cycled group's β2 is set to 0.99.</para>
/// </remarks>
public class OneCycle : LrScheduler
{
    /// <summary>The β2 DeepSpeed writes alongside the cycled β1.</summary>
    public const double CycledBeta2 = 0.99;

    private readonly double _totalSize, _stepRatio, _firstStepSize, _secondStepSize;
    private readonly int _firstStairCount, _secondStairCount;
    private readonly bool _skipLrDecay, _skipMomDecay;

    /// <summary>Creates the schedule; a fresh one sets every group's lr to <paramref name="cycleMinLr"/> (and β1 to
    /// <paramref name="cycleMinMom"/> when momentum is cycled).</summary>
    /// <param name="optimizer">The optimizer to drive.</param>
    /// <param name="cycleMinLr"><c>cycle_min_lr</c>.</param>
    /// <param name="cycleMaxLr"><c>cycle_max_lr</c>.</param>
    /// <param name="decayLrRate"><c>decay_lr_rate</c> (default 0).</param>
    /// <param name="cycleFirstStepSize"><c>cycle_first_step_size</c> (default 2000).</param>
    /// <param name="cycleSecondStepSize"><c>cycle_second_step_size</c> (default: the first step size).</param>
    /// <param name="cycleFirstStairCount"><c>cycle_first_stair_count</c> (default 0 = continuous).</param>
    /// <param name="cycleSecondStairCount"><c>cycle_second_stair_count</c> (default: the first stair count).</param>
    /// <param name="decayStepSize"><c>decay_step_size</c> (default 0 = no decay).</param>
    /// <param name="cycleMomentum"><c>cycle_momentum</c> (default true).</param>
    /// <param name="cycleMinMom"><c>cycle_min_mom</c> (default 0.8).</param>
    /// <param name="cycleMaxMom"><c>cycle_max_mom</c> (default 0.9).</param>
    /// <param name="decayMomRate"><c>decay_mom_rate</c> (default 0).</param>
    /// <param name="lastBatchIteration"><c>last_batch_iteration</c> (default −1).</param>
    public OneCycle(torch.optim.Optimizer optimizer, double cycleMinLr, double cycleMaxLr, double decayLrRate = 0.0,
        int cycleFirstStepSize = 2000, int? cycleSecondStepSize = null, int cycleFirstStairCount = 0,
        int? cycleSecondStairCount = null, int decayStepSize = 0, bool cycleMomentum = true, double cycleMinMom = 0.8,
        double cycleMaxMom = 0.9, double decayMomRate = 0.0, int lastBatchIteration = -1)
        : base(optimizer, lastBatchIteration)
    {
        RequirePositive("cycle_first_step_size", cycleFirstStepSize);
        if (cycleSecondStepSize is { } second) RequirePositive("cycle_second_step_size", second);
        RequireNonNegative("cycle_first_stair_count", cycleFirstStairCount);
        if (cycleSecondStairCount is { } secondStairs) RequireNonNegative("cycle_second_stair_count", secondStairs);
        RequireNonNegative("decay_step_size", decayStepSize);
        foreach (var (key, value) in new[] { ("cycle_min_lr", cycleMinLr), ("cycle_max_lr", cycleMaxLr) })
        {
            RequireFinite(key, value);
            if (value < 0) throw new ArgumentException($"{key} must be >= 0, got {value}.", key);
        }
        RequireFinite("decay_lr_rate", decayLrRate);
        RequireFinite("decay_mom_rate", decayMomRate);

        _firstStepSize = cycleFirstStepSize;
        _secondStepSize = cycleSecondStepSize ?? cycleFirstStepSize;
        _totalSize = _firstStepSize + _secondStepSize;
        _stepRatio = _firstStepSize / _totalSize;
        _firstStairCount = cycleFirstStairCount;
        _secondStairCount = cycleSecondStairCount ?? cycleFirstStairCount;
        CycleMinLr = cycleMinLr;
        CycleMaxLr = cycleMaxLr;
        DecayLrRate = decayLrRate;
        DecayStepSize = decayStepSize;
        DecayMomRate = decayMomRate;
        CycleMinMom = cycleMinMom;
        CycleMaxMom = cycleMaxMom;
        _skipLrDecay = decayStepSize == 0 || decayLrRate == 0;
        _skipMomDecay = decayStepSize == 0 || decayMomRate == 0;
        CycleMomentum = cycleMomentum;
        if (cycleMomentum && !(optimizer is torch.optim.IBetas && Groups.All(g => g is torch.optim.IBetas)))
        {
            Warn($"cycle_momentum is disabled because optimizer {optimizer.GetType().Name} does not support momentum, no betas attribute in defaults");
            CycleMomentum = false;
        }
        if (CycleMomentum)
            foreach (var (key, value) in new[] { ("cycle_min_mom", cycleMinMom), ("cycle_max_mom", cycleMaxMom) })
                if (!(value >= 0 && value < 1)) throw new ArgumentException($"{key} must be in [0, 1), got {value}.", key);

        // Validated: only now touch the optimizer.
        if (lastBatchIteration != -1) return;
        foreach (var g in Groups) g.LearningRate = cycleMinLr;
        if (CycleMomentum) ApplyMomentum(PerGroupMom(cycleMinMom));
    }

    /// <summary><c>cycle_min_lr</c>.</summary>
    public double CycleMinLr { get; }
    /// <summary><c>cycle_max_lr</c>.</summary>
    public double CycleMaxLr { get; }
    /// <summary><c>decay_lr_rate</c>.</summary>
    public double DecayLrRate { get; }
    /// <summary><c>decay_step_size</c>.</summary>
    public int DecayStepSize { get; }
    /// <summary><c>cycle_min_mom</c>.</summary>
    public double CycleMinMom { get; }
    /// <summary><c>cycle_max_mom</c>.</summary>
    public double CycleMaxMom { get; }
    /// <summary><c>decay_mom_rate</c>.</summary>
    public double DecayMomRate { get; }
    /// <summary>Whether β1 is being cycled (false when requested off or when the optimizer has no betas).</summary>
    public bool CycleMomentum { get; }

    /// <inheritdoc/>
    public override double[] GetLr()
    {
        if (LastBatchIteration < _totalSize)
            return PerGroup(CycleMinLr + (CycleMaxLr - CycleMinLr) * ScaleFactor());
        if (_skipLrDecay) return PerGroup(CycleMinLr);
        var factor = 1 + DecayLrRate * ((LastBatchIteration - _totalSize + 1) / DecayStepSize);
        return PerGroup(CycleMinLr / factor);
    }

    /// <summary>The (β1, β2) of every group at <see cref="LrScheduler.LastBatchIteration"/>, or null when momentum is not cycled.</summary>
    public (double Beta1, double Beta2)[]? GetMom()
    {
        if (!CycleMomentum) return null;
        if (LastBatchIteration < _totalSize)
            return PerGroupMom(CycleMaxMom - (CycleMaxMom - CycleMinMom) * ScaleFactor());
        if (_skipMomDecay) return PerGroupMom(CycleMaxMom);
        var factor = 1 + DecayMomRate * ((LastBatchIteration - _totalSize + 1) / DecayStepSize);
        return PerGroupMom(CycleMaxMom * factor);
    }

    /// <summary>Advances one batch; writes the learning rate and, when cycling, the betas.</summary>
    public override void Step(int? batchIteration = null)
    {
        base.Step(batchIteration);
        if (GetMom() is { } moms) ApplyMomentum(moms);
    }

    private double ScaleFactor()
    {
        var batchIteration = LastBatchIteration + 1;
        var cycle = Math.Floor(1 + batchIteration / _totalSize);
        var x = 1.0 + batchIteration / _totalSize - cycle;
        double scale;
        int stairs;
        if (x <= _stepRatio)
        {
            scale = x / _stepRatio;
            stairs = _firstStairCount;
        }
        else
        {
            scale = (x - 1) / (_stepRatio - 1);
            stairs = _secondStairCount;
        }
        if (stairs > 0)
        {
            // Quantised from the integer offset within the cycle, as DeepSpeed does, so a stair boundary is exact.
            var cycleIteration = batchIteration % _totalSize;
            var position = cycleIteration <= _firstStepSize
                ? cycleIteration * stairs / _firstStepSize
                : (_totalSize - cycleIteration) * stairs / _secondStepSize;
            scale = Math.Floor(position) / stairs;
        }
        return scale;
    }

    private (double, double)[] PerGroupMom(double beta1) => Enumerable.Repeat((beta1, CycledBeta2), Groups.Count).ToArray();

    private void ApplyMomentum((double Beta1, double Beta2)[] moms)
    {
        for (var i = 0; i < Groups.Count; i++) ((torch.optim.IBetas)Groups[i]).Betas = moms[i];
    }

    private static void RequireNonNegative(string key, int value)
    {
        if (value < 0) throw new ArgumentException($"{key} must be >= 0, got {value}.", key);
    }
}
