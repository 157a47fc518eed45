namespace DeepSpeedSharp.Precision;

/// <summary>
/// A fixed loss scale (DeepSpeed's <c>LossScaler</c>, config <c>fp16.loss_scale</c> &gt; 0). Overflowing steps are
/// still skipped by the engine, but the scale never changes; <see cref="LossScaler.CurIter"/> counts updates as
/// DeepSpeed's <c>FP16_Optimizer</c> does.
/// </summary>
public sealed class StaticLossScaler : LossScaler
{
    private double _scale;

    /// <summary>A scaler with the fixed <paramref name="scale"/> (positive, finite).</summary>
    public StaticLossScaler(double scale)
    {
        if (!double.IsFinite(scale) || scale <= 0)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "a static loss scale must be a positive finite number (fp16.loss_scale)");
        _scale = scale;
    }

    /// <inheritdoc/>
    public override double Scale => _scale;

    /// <inheritdoc/>
    public override bool Dynamic => false;

    /// <inheritdoc/>
    public override void Update(bool overflow) => CurIter++;

    /// <inheritdoc/>
    public override LossScalerState StateDict() => new(false, _scale, CurIter);

    /// <inheritdoc/>
    public override void LoadStateDict(LossScalerState state)
    {
        CheckCommon(state);
        _scale = state.CurScale;
        CurIter = state.CurIter;
    }
}
