namespace DeepSpeedSharp.Precision;

/// <summary>
/// DeepSpeed's dynamic loss scaling (<c>DynamicLossScaler.update_scale</c>, the scaler of the ZeRO optimizers),
/// step for step:
/// <list type="bullet">
/// <item>On overflow: if <see cref="Hysteresis"/> is 1 or <see cref="CurHysteresis"/> has run down to 1 the scale is
/// divided by 2 (never below <see cref="MinScale"/>; if it already equals it and <see cref="RaiseErrorAtMinScale"/>
/// the update throws, as DeepSpeed does), otherwise only <see cref="CurHysteresis"/> drops by one.
/// Either way <see cref="LastOverflowIter"/> = <see cref="LossScaler.CurIter"/>.</item>
/// <item>On a clean step: with <see cref="ConsecutiveHysteresis"/> the hysteresis is refilled at once; when
/// <c>CurIter - LastOverflowIter - 1</c> is a positive multiple of <see cref="ScaleWindow"/> the scale doubles
/// (and the hysteresis is refilled).</item>
/// <item><see cref="LossScaler.CurIter"/> then grows by one, overflow or not.</item>
/// </list>
/// After a shrink the hysteresis stays spent until a window passes (or, with consecutive hysteresis, until one clean
/// step), so further overflows keep halving the scale.
/// </summary>
public sealed class DynamicLossScaler : LossScaler
{
    private double _scale;

    /// <summary>A dynamic scaler; the defaults are DeepSpeed's config defaults except the initial scale.</summary>
    /// <param name="initialScale">Starting scale (<c>2^initial_scale_power</c>).</param>
    /// <param name="scaleWindow"><c>loss_scale_window</c>: clean steps before the scale doubles.</param>
    /// <param name="minScale"><c>min_loss_scale</c>: the floor of the scale.</param>
    /// <param name="hysteresis"><c>hysteresis</c> (DeepSpeed's <c>delayed_shift</c>): overflows needed per halving.</param>
    /// <param name="consecutiveHysteresis"><c>consecutive_hysteresis</c>: refill the hysteresis on every clean step.</param>
    /// <param name="raiseErrorAtMinScale">Throw when an overflow would shrink a scale already at <paramref name="minScale"/>.</param>
    public DynamicLossScaler(double initialScale, int scaleWindow = 1000, double minScale = 1, int hysteresis = 2,
        bool consecutiveHysteresis = false, bool raiseErrorAtMinScale = true)
    {
        RequirePositiveFinite(initialScale, "initial scale (2^fp16.initial_scale_power)");
        RequirePositiveFinite(minScale, "fp16.min_loss_scale");
        if (scaleWindow < 1) throw new ArgumentOutOfRangeException(nameof(scaleWindow), scaleWindow, "fp16.loss_scale_window must be >= 1");
        if (hysteresis < 1) throw new ArgumentOutOfRangeException(nameof(hysteresis), hysteresis, "fp16.hysteresis must be >= 1");
        _scale = initialScale;
        ScaleWindow = scaleWindow;
        MinScale = minScale;
        Hysteresis = hysteresis;
        CurHysteresis = hysteresis;
        ConsecutiveHysteresis = consecutiveHysteresis;
        RaiseErrorAtMinScale = raiseErrorAtMinScale;
    }

    /// <inheritdoc/>
    public override double Scale => _scale;

    /// <inheritdoc/>
    public override bool Dynamic => true;

    /// <summary>Factor the scale is divided or multiplied by: 2, as in DeepSpeed.</summary>
    public double ScaleFactor { get; private set; } = 2.0;

    /// <summary><c>loss_scale_window</c>.</summary>
    public int ScaleWindow { get; private set; }

    /// <summary><c>min_loss_scale</c>.</summary>
    public double MinScale { get; private set; }

    /// <summary><c>hysteresis</c> (DeepSpeed's <c>delayed_shift</c>).</summary>
    public int Hysteresis { get; private set; }

    /// <summary>Overflows still tolerated before the next halving (DeepSpeed's <c>cur_hysteresis</c>); 1 = the next one halves.</summary>
    public int CurHysteresis { get; private set; }

    /// <summary><c>consecutive_hysteresis</c>.</summary>
    public bool ConsecutiveHysteresis { get; private set; }

    /// <summary>Whether an overflow at the minimum scale throws (DeepSpeed's <c>raise_error_at_min_scale</c>, true by default).</summary>
    public bool RaiseErrorAtMinScale { get; private set; }

    /// <summary>The <see cref="LossScaler.CurIter"/> of the last overflow; -1 before any.</summary>
    public long LastOverflowIter { get; private set; } = -1;

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">An overflow with the hysteresis spent while the scale already equals
    /// <see cref="MinScale"/> and <see cref="RaiseErrorAtMinScale"/> is set; the state is left unchanged.</exception>
    public override void Update(bool overflow)
    {
        if (overflow)
        {
            if (Hysteresis == 1 || CurHysteresis == 1)
            {
                if (_scale == MinScale && RaiseErrorAtMinScale)
                    throw new InvalidOperationException(
                        $"fp16 gradients overflowed at iteration {CurIter} with the loss scale already at fp16.min_loss_scale={MinScale}; " +
                        "it cannot be reduced further (DeepSpeed stops here too: 'Current loss scale already at minimum'). " +
                        "Look for inf/nan in the data or model, lower the learning rate, or lower fp16.min_loss_scale.");
                _scale = Math.Max(_scale / ScaleFactor, MinScale);
            }
            else
            {
                CurHysteresis--;
            }
            LastOverflowIter = CurIter;
        }
        else
        {
            if (ConsecutiveHysteresis)
                CurHysteresis = Hysteresis;
            var stableInterval = CurIter - LastOverflowIter - 1;
            if (stableInterval > 0 && stableInterval % ScaleWindow == 0)
            {
                CurHysteresis = Hysteresis;
                _scale *= ScaleFactor;
            }
        }
        CurIter++;
    }

    /// <inheritdoc/>
    public override LossScalerState StateDict() => new(true, _scale, CurIter)
    {
        LastOverflowIter = LastOverflowIter,
        CurHysteresis = CurHysteresis,
        ScaleFactor = ScaleFactor,
        ScaleWindow = ScaleWindow,
        MinScale = MinScale,
        DelayedShift = Hysteresis,
        ConsecutiveHysteresis = ConsecutiveHysteresis,
        RaiseErrorAtMinScale = RaiseErrorAtMinScale,
    };

    /// <summary>
    /// Restores the counters and scale and, where present, the settings saved with them: like DeepSpeed's ZeRO
    /// checkpoints, which store the whole scaler object, the saved window, minimum and hysteresis win over this
    /// run's config. A missing <c>cur_hysteresis</c> means the full hysteresis, as DeepSpeed's <c>FP16_Optimizer</c> reads it.
    /// </summary>
    public override void LoadStateDict(LossScalerState state)
    {
        CheckCommon(state);
        var last = state.LastOverflowIter
            ?? throw new ArgumentException("dynamic loss scaler state has no last_overflow_iter", nameof(state));
        if (last < -1 || last >= state.CurIter)
            throw new ArgumentException(
                $"loss scaler state last_overflow_iter={last} must be in [-1, cur_iter={state.CurIter})", nameof(state));
        var factor = state.ScaleFactor ?? ScaleFactor;
        if (!double.IsFinite(factor) || factor <= 1)
            throw new ArgumentException($"loss scaler state scale_factor must be a finite number > 1, got {factor}", nameof(state));
        var window = state.ScaleWindow ?? ScaleWindow;
        if (window < 1) throw new ArgumentException($"loss scaler state scale_window must be >= 1, got {window}", nameof(state));
        var min = state.MinScale ?? MinScale;
        if (!double.IsFinite(min) || min <= 0)
            throw new ArgumentException($"loss scaler state min_scale must be a positive finite number, got {min}", nameof(state));
        var shift = state.DelayedShift ?? Hysteresis;
        if (shift < 1) throw new ArgumentException($"loss scaler state delayed_shift must be >= 1, got {shift}", nameof(state));
        var cur = state.CurHysteresis ?? shift;
        if (cur < 1 || cur > shift)
            throw new ArgumentException($"loss scaler state cur_hysteresis={cur} must be in [1, delayed_shift={shift}]", nameof(state));

        _scale = state.CurScale;
        CurIter = state.CurIter;
        LastOverflowIter = last;
        ScaleFactor = factor;
        ScaleWindow = window;
        MinScale = min;
        Hysteresis = shift;
        CurHysteresis = cur;
        ConsecutiveHysteresis = state.ConsecutiveHysteresis ?? ConsecutiveHysteresis;
        RaiseErrorAtMinScale = state.RaiseErrorAtMinScale ?? RaiseErrorAtMinScale;
    }

    private static void RequirePositiveFinite(double value, string what)
    {
        if (!double.IsFinite(value) || value <= 0)
            throw new ArgumentOutOfRangeException(what, value, $"{what} must be a positive finite number");
    }
}
