using System.Globalization;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// The values a numeric config key accepts, declared on the key's definition (<see cref="Kinds.Int"/>,
/// <see cref="Kinds.Long"/>, <see cref="Kinds.Double"/>, or <c>WithRange</c> on a hand-written field). The reader
/// rejects anything outside it with one line naming the key, the value and the range:
/// <c>zero_optimization.allgather_bucket_size: must be a positive integer, got 0</c>.
/// </summary>
/// <param name="Min">The smallest accepted value (exclusive when <see cref="MinExclusive"/>).</param>
/// <param name="Max">The largest accepted value (inclusive).</param>
/// <param name="Integer">Whether only integers are accepted.</param>
internal sealed record NumericRange(double Min, double Max, bool Integer)
{
    /// <summary>Whether <see cref="Min"/> itself is rejected (e.g. a factor that must be &gt; 0).</summary>
    public bool MinExclusive { get; init; }

    /// <summary>A description replacing the generated one (e.g. <c>0, 1, 2 or 3</c>).</summary>
    public string? Text { get; init; }

    /// <summary>A non-numeric spelling also accepted, for the message (e.g. <c>"auto"</c>).</summary>
    public string? Or { get; init; }

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static NumericRange Int(long min, long max) => new(min, max, true);

    /// <summary>A number in [<paramref name="min"/>, <paramref name="max"/>] (or (min, max] when <paramref name="minExclusive"/>).</summary>
    public static NumericRange Real(double min, double max, bool minExclusive = false) => new(min, max, false) { MinExclusive = minExclusive };

    /// <summary>Whether <paramref name="value"/> is inside the range (integrality is checked by the reader).</summary>
    public bool Contains(double value) => (MinExclusive ? value > Min : value >= Min) && value <= Max;

    /// <summary>Whether the range has an upper bound a user can meet (not just the type's limit).</summary>
    public bool HasUpperBound => Integer ? Max < int.MaxValue : !double.IsPositiveInfinity(Max);

    /// <summary>What is accepted, e.g. "a positive integer", "an integer ≥ 0", "a number between 0 and 1".</summary>
    public string Describe(bool showTypeLimit = false)
    {
        var text = Text ?? Generate(showTypeLimit);
        return Or is null ? text : $"{text} or {Or}";
    }

    private string Generate(bool showTypeLimit)
    {
        var noun = Integer ? "an integer" : "a number";
        if (HasUpperBound || showTypeLimit) return $"{noun} between {Format(Min)} and {Format(Max)}";
        if (Integer && Min == 1) return "a positive integer";
        return $"{noun} {(MinExclusive ? ">" : "≥")} {Format(Min)}";
    }

    /// <summary>The one-line error for a value outside the range; <paramref name="value"/> is the value as written.</summary>
    public DeepSpeedConfigException Error(string path, string value, bool aboveTypeLimit = false) =>
        new($"{path}: must be {Describe(aboveTypeLimit)}, got {value}");

    /// <summary>A value just below the range (for tests), or null when the range has no lower bound.</summary>
    public double? Below() => double.IsNegativeInfinity(Min) || Min <= long.MinValue ? null : MinExclusive ? Min : Integer ? Min - 1 : Min - 0.5;

    /// <summary>A value just above the range (for tests), or null when it has no upper bound below the type's limit.</summary>
    public double? Above() => HasUpperBound ? (Integer ? Max + 1 : Max + 0.5) : null;

    private static string Format(double v) =>
        v >= long.MaxValue ? long.MaxValue.ToString(CultureInfo.InvariantCulture) : v.ToString(CultureInfo.InvariantCulture);
}
