using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Precision;

/// <summary>
/// An fp16 loss scaler (DeepSpeed's <c>deepspeed/runtime/fp16/loss_scaler.py</c>): the loss is multiplied by
/// <see cref="Scale"/> before backward, gradients are divided by it before the optimizer step, and
/// <see cref="Update"/> is called once per optimizer step with whether the (all-reduced) gradients overflowed.
/// A step whose gradients overflowed is skipped by the engine; the scaler is updated either way.
/// </summary>
public abstract class LossScaler
{
    /// <summary>The current loss scale (DeepSpeed's <c>cur_scale</c> / <c>loss_scale</c>).</summary>
    public abstract double Scale { get; }

    /// <summary>True for <see cref="DynamicLossScaler"/>, false for <see cref="StaticLossScaler"/>.</summary>
    public abstract bool Dynamic { get; }

    /// <summary>Number of <see cref="Update"/> calls so far, overflow steps included (DeepSpeed's <c>cur_iter</c>).</summary>
    public long CurIter { get; protected set; }

    /// <summary>Advances the scaler by one optimizer step; <paramref name="overflow"/> = the gradients held inf/nan.</summary>
    public abstract void Update(bool overflow);

    /// <summary>The checkpoint state (JSON-serialisable with DeepSpeed's key names).</summary>
    public abstract LossScalerState StateDict();

    /// <summary>Restores a state written by <see cref="StateDict"/> of the same kind (static or dynamic).</summary>
    public abstract void LoadStateDict(LossScalerState state);

    /// <summary>
    /// Builds the scaler DeepSpeed would build from the <c>fp16</c> section: <c>loss_scale</c> &gt; 0 gives a
    /// <see cref="StaticLossScaler"/>; <c>loss_scale</c> = 0 gives a <see cref="DynamicLossScaler"/> starting at
    /// 2^<c>initial_scale_power</c> with <c>loss_scale_window</c>, <c>hysteresis</c>, <c>consecutive_hysteresis</c>
    /// and <c>min_loss_scale</c>, raising at the minimum scale as DeepSpeed's ZeRO path does. With fp16 disabled the
    /// scaler is static with scale 1 (DeepSpeed creates the same for fp32/bf16).
    /// </summary>
    /// <exception cref="DeepSpeedConfigException">A value DeepSpeed's validation would reject; the message names the key.</exception>
    public static LossScaler FromConfig(Fp16Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Enabled)
            return new StaticLossScaler(1.0);
        if (!double.IsFinite(config.LossScale) || config.LossScale < 0)
            throw new DeepSpeedConfigException($"fp16.loss_scale must be a finite number >= 0 (0 = dynamic), got {config.LossScale}");
        if (config.LossScale > 0)
            return new StaticLossScaler(config.LossScale);

        var initial = Math.ScaleB(1.0, config.InitialScalePower);
        if (!double.IsFinite(initial) || initial <= 0)
            throw new DeepSpeedConfigException(
                $"fp16.initial_scale_power={config.InitialScalePower} gives a loss scale 2^{config.InitialScalePower} that is not a positive finite number");
        if (config.LossScaleWindow < 1)
            throw new DeepSpeedConfigException($"fp16.loss_scale_window must be an integer >= 1, got {config.LossScaleWindow}");
        if (config.Hysteresis < 1)
            throw new DeepSpeedConfigException($"fp16.hysteresis must be an integer >= 1, got {config.Hysteresis}");
        if (!double.IsFinite(config.MinLossScale) || config.MinLossScale <= 0)
            throw new DeepSpeedConfigException(
                $"fp16.min_loss_scale must be a positive finite number for dynamic loss scaling (DeepSpeed rejects min_scale <= 0), got {config.MinLossScale}");
        return new DynamicLossScaler(initial, config.LossScaleWindow, config.MinLossScale, config.Hysteresis,
            config.ConsecutiveHysteresis, raiseErrorAtMinScale: true);
    }

    /// <summary>Throws unless <paramref name="state"/> is of this scaler's kind and its common fields are valid.</summary>
    protected void CheckCommon(LossScalerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Dynamic != Dynamic)
            throw new ArgumentException(
                $"loss scaler state is {(state.Dynamic ? "dynamic" : "static")} (dynamic_loss_scale={state.Dynamic.ToString().ToLowerInvariant()}) " +
                $"but this scaler is {(Dynamic ? "dynamic (fp16.loss_scale=0)" : "static (fp16.loss_scale>0)")}; use the same fp16.loss_scale mode as the run that saved it",
                nameof(state));
        if (!double.IsFinite(state.CurScale) || state.CurScale <= 0)
            throw new ArgumentException($"loss scaler state cur_scale must be a positive finite number, got {state.CurScale}", nameof(state));
        if (state.CurIter < 0)
            throw new ArgumentException($"loss scaler state cur_iter must be >= 0, got {state.CurIter}", nameof(state));
    }
}
