using System.Globalization;

namespace DeepSpeedSharp.Optim.CpuAdam;

/// <summary>
/// The hyper-parameters of one Adam/AdamW step of <see cref="CpuAdamKernel"/>: the arguments DeepSpeed's
/// <c>ds_adam_step</c> takes besides the tensors (<c>step</c>, <c>lr</c>, <c>beta1</c>, <c>beta2</c>, <c>epsilon</c>,
/// <c>weight_decay</c>, <c>bias_correction</c>) plus <c>adamw_mode</c>.
/// </summary>
/// <param name="Lr">Learning rate (≥ 0).</param>
/// <param name="Beta1">β1, in [0, 1).</param>
/// <param name="Beta2">β2, in [0, 1).</param>
/// <param name="Eps">Denominator term (≥ 0).</param>
/// <param name="WeightDecay">Weight decay (≥ 0): decoupled when <paramref name="AdamWMode"/>, else an L2 term added to the gradient.</param>
/// <param name="Step">The 1-based number of this step (t in the bias corrections 1 − β^t).</param>
/// <param name="BiasCorrection">Whether the moments are divided by 1 − β^t.</param>
/// <param name="AdamWMode">True: AdamW (decoupled weight decay); false: Adam with an L2 penalty.</param>
public readonly record struct AdamStepArgs(
    double Lr, double Beta1, double Beta2, double Eps, double WeightDecay, long Step,
    bool BiasCorrection = true, bool AdamWMode = true)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the first out-of-range value.</summary>
    public void Validate()
    {
        if (Problem() is { } problem) throw new ArgumentException($"CPU Adam: {problem}");
    }

    /// <summary>What is wrong with the first out-of-range value (e.g. "betas[1] must be in [0, 1), got 1."), or null.</summary>
    internal string? Problem()
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        if (!(Lr >= 0) || double.IsInfinity(Lr)) return $"lr must be a finite number >= 0, got {F(Lr)}.";
        if (!(Beta1 >= 0 && Beta1 < 1)) return $"betas[0] must be in [0, 1), got {F(Beta1)}.";
        if (!(Beta2 >= 0 && Beta2 < 1)) return $"betas[1] must be in [0, 1), got {F(Beta2)}.";
        if (!(Eps >= 0) || double.IsInfinity(Eps)) return $"eps must be a finite number >= 0, got {F(Eps)}.";
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) return $"weight_decay must be a finite number >= 0, got {F(WeightDecay)}.";
        if (Step < 1) return $"step must be >= 1 (the 1-based step number), got {Step}.";
        return null;
    }

    /// <summary>The per-step float constants, derived in double precision and rounded once to float, as
    /// <c>torch.optim.Adam/AdamW</c> do when they pass Python floats to fp32 tensor operations.</summary>
    internal AdamCoefficients Coefficients()
    {
        Validate();
        var bc1 = BiasCorrection ? 1 - Math.Pow(Beta1, Step) : 1.0;
        var bc2 = BiasCorrection ? 1 - Math.Pow(Beta2, Step) : 1.0;
        var decoupled = AdamWMode && WeightDecay != 0;
        var l2 = !AdamWMode && WeightDecay != 0;
        return new AdamCoefficients(
            Beta1: (float)Beta1,
            OneMinusBeta1: (float)(1 - Beta1),
            Beta2: (float)Beta2,
            OneMinusBeta2: (float)(1 - Beta2),
            SqrtBiasCorrection2: (float)Math.Sqrt(bc2),
            Eps: (float)Eps,
            NegStepSize: (float)(-(Lr / bc1)),
            DecayFactor: decoupled ? (float)(1 - Lr * WeightDecay) : 1f,
            L2: l2 ? (float)WeightDecay : 0f,
            Decoupled: decoupled,
            UseL2: l2);
    }
}

/// <summary>The float constants one kernel pass uses (see <see cref="AdamStepArgs.Coefficients"/>).</summary>
internal readonly record struct AdamCoefficients(
    float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float SqrtBiasCorrection2, float Eps,
    float NegStepSize, float DecayFactor, float L2, bool Decoupled, bool UseL2);
