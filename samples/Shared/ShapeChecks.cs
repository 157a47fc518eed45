namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// The samples' checks of a transformer's shape, each an <see cref="ArgumentException"/> of one line naming the
/// command-line option and the value given.
/// </summary>
public static class ShapeChecks
{
    /// <summary>The options every sample model has: <c>--d-model</c> and <c>--layers</c> positive, <c>--heads</c>
    /// dividing <c>--d-model</c>, <c>--dropout</c> in [0, 1).</summary>
    public static void Transformer(int dModel, int layers, int heads, double dropout)
    {
        Positive("--d-model", dModel);
        Positive("--layers", layers);
        if (heads < 1 || dModel % heads != 0)
            throw new ArgumentException($"--heads must divide --d-model ({dModel}), got {heads}");
        if (dropout is < 0 or >= 1) throw new ArgumentException($"--dropout must be in [0, 1), got {dropout}");
    }

    /// <summary>Throws unless <paramref name="value"/> ≥ 1.</summary>
    public static void Positive(string option, int value)
    {
        if (value < 1) throw new ArgumentException($"{option} must be positive, got {value}");
    }
}
