namespace DeepSpeedSharp.Schedulers;

/// <summary>How the warm-up schedules rise from their minimum to their maximum (DeepSpeed <c>warmup_type</c>).</summary>
public enum WarmupType
{
    /// <summary><c>"log"</c>: fraction = ln(i + 1) / ln(warmup_num_steps) at iteration i.</summary>
    Log,

    /// <summary><c>"linear"</c>: fraction = i / warmup_num_steps at iteration i.</summary>
    Linear,
}

/// <summary>The warm-up arithmetic shared by <see cref="WarmupLR"/>, <see cref="WarmupDecayLR"/> and
/// <see cref="WarmupCosineLR"/>.</summary>
internal static class Warmup
{
    /// <summary>Parses DeepSpeed's <c>warmup_type</c> (exactly "log" or "linear").</summary>
    /// <remarks>DeepSpeed logs a warning and falls back to "log" for other values; we reject them, since a typo would
    /// otherwise silently change the schedule.</remarks>
    public static WarmupType Parse(string? warmupType) => warmupType switch
    {
        "log" => WarmupType.Log,
        "linear" => WarmupType.Linear,
        _ => throw new ArgumentException($"warmup_type must be 'log' or 'linear', got '{warmupType}'.", "warmup_type"),
    };

    /// <summary>DeepSpeed's effective step count: <c>max(2, warmup_num_steps)</c> (log needs ln(n) ≠ 0).</summary>
    public static int EffectiveSteps(int warmupNumSteps) => Math.Max(2, warmupNumSteps);

    /// <summary>The warm-up fraction in [0, 1) at <paramref name="iteration"/> (which must be below the step count).</summary>
    public static double Fraction(WarmupType type, int iteration, int effectiveSteps) => type == WarmupType.Log
        ? 1.0 / Math.Log(effectiveSteps) * Math.Log(iteration + 1)
        : (double)iteration / effectiveSteps;
}
