using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.DataParallel;

/// <summary>
/// The factors DeepSpeed applies around a gradient reduction: with <c>prescale_gradients</c>, divide by the world
/// size before summing; otherwise divide by <c>gradient_predivide_factor</c> before and multiply by
/// predivide / world after (so the result is the mean either way). With <c>gradient_allreduce_op: "sum"</c> no
/// averaging is applied.
/// </summary>
internal readonly record struct GradientScaling(double Before, double After)
{
    public static GradientScaling From(DeepSpeedConfig config, int worldSize)
    {
        bool average = !string.Equals(config.GradientAllreduceOp, "sum", StringComparison.OrdinalIgnoreCase);
        if (config.PrescaleGradients) return new(average ? 1.0 / worldSize : 1.0, 1.0);
        double predivide = config.GradientPredivideFactor;
        double after = average && predivide != worldSize ? predivide / worldSize : 1.0;
        return new(predivide != 1.0 ? 1.0 / predivide : 1.0, after);
    }
}
