using System.Text.Json.Serialization;

namespace DeepSpeedSharp.Precision;

/// <summary>
/// A loss scaler's checkpoint state, with the key names DeepSpeed uses (<c>FP16_Optimizer.state_dict()</c> and the
/// attributes of <c>DynamicLossScaler</c>). The dynamic-only fields are null for a static scaler.
/// </summary>
/// <param name="Dynamic"><c>dynamic_loss_scale</c>.</param>
/// <param name="CurScale"><c>cur_scale</c>.</param>
/// <param name="CurIter"><c>cur_iter</c>: updates so far, overflow steps included.</param>
public sealed record LossScalerState(
    [property: JsonPropertyName("dynamic_loss_scale")] bool Dynamic,
    [property: JsonPropertyName("cur_scale")] double CurScale,
    [property: JsonPropertyName("cur_iter")] long CurIter)
{
    /// <summary><c>last_overflow_iter</c>: the <c>cur_iter</c> of the last overflow, -1 before any.</summary>
    [JsonPropertyName("last_overflow_iter")] public long? LastOverflowIter { get; init; }

    /// <summary><c>cur_hysteresis</c>: overflows still tolerated before the scale shrinks (1 = the next one shrinks it).</summary>
    [JsonPropertyName("cur_hysteresis")] public int? CurHysteresis { get; init; }

    /// <summary><c>scale_factor</c>: 2 in DeepSpeed.</summary>
    [JsonPropertyName("scale_factor")] public double? ScaleFactor { get; init; }

    /// <summary><c>scale_window</c> (config <c>loss_scale_window</c>).</summary>
    [JsonPropertyName("scale_window")] public int? ScaleWindow { get; init; }

    /// <summary><c>min_scale</c> (config <c>min_loss_scale</c>).</summary>
    [JsonPropertyName("min_scale")] public double? MinScale { get; init; }

    /// <summary><c>delayed_shift</c> (config <c>hysteresis</c>).</summary>
    [JsonPropertyName("delayed_shift")] public int? DelayedShift { get; init; }

    /// <summary><c>consecutive_hysteresis</c>.</summary>
    [JsonPropertyName("consecutive_hysteresis")] public bool? ConsecutiveHysteresis { get; init; }

    /// <summary><c>raise_error_at_min_scale</c>.</summary>
    [JsonPropertyName("raise_error_at_min_scale")] public bool? RaiseErrorAtMinScale { get; init; }
}
