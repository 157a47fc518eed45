using System.Globalization;
using System.Text.Json.Serialization;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// A learning-rate schedule's checkpoint state: DeepSpeed's <c>{"last_batch_iteration": n}</c>. Serialises with
/// System.Text.Json under that key.
/// </summary>
/// <param name="LastBatchIteration">The index of the last batch the schedule was stepped to.</param>
public sealed record LrSchedulerState([property: JsonPropertyName("last_batch_iteration")] int LastBatchIteration)
{
    /// <summary>The key DeepSpeed uses.</summary>
    public const string LastBatchIterationKey = "last_batch_iteration";

    /// <summary>The DeepSpeed dictionary form, e.g. for a pickled checkpoint.</summary>
    public Dictionary<string, object?> ToDictionary() => new() { [LastBatchIterationKey] = LastBatchIteration };

    /// <summary>Reads the DeepSpeed dictionary form; the value may be any integral number (int, long, or a whole double).</summary>
    public static LrSchedulerState FromDictionary(IReadOnlyDictionary<string, object?> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!state.TryGetValue(LastBatchIterationKey, out var raw) || raw is null)
            throw new ArgumentException(
                $"lr_scheduler state has no '{LastBatchIterationKey}' entry (keys: {string.Join(", ", state.Keys)}).", nameof(state));
        var value = raw switch
        {
            int i => (long)i,
            long l => l,
            double d when d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (long)d,
            IConvertible c when raw is not (string or double or float) => c.ToInt64(CultureInfo.InvariantCulture),
            _ => throw new ArgumentException(
                $"lr_scheduler '{LastBatchIterationKey}' must be an integer, got {raw} ({raw.GetType().Name}).", nameof(state)),
        };
        if (value < -1 || value > int.MaxValue)
            throw new ArgumentException($"lr_scheduler '{LastBatchIterationKey}' must be >= -1, got {value}.", nameof(state));
        return new LrSchedulerState((int)value);
    }
}
