using TorchSharp.Modules;

namespace DeepSpeedSharp.Utils;

/// <summary>
/// Reads about a parameter's gradient without keeping it alive: every read of <c>.grad</c> creates a tensor handle, and an
/// undisposed one holds the gradient's memory after <c>grad = null</c> until a finalizer runs. These dispose theirs.
/// </summary>
internal static class GradientHandles
{
    /// <summary>Whether <paramref name="p"/> has a gradient.</summary>
    public static bool HasGradient(Parameter p)
    {
        using var g = p.grad;
        return g is not null;
    }

    /// <summary>Bytes of <paramref name="p"/>'s gradient (0 without one).</summary>
    public static long GradientBytes(Parameter p)
    {
        using var g = p.grad;
        return g is null ? 0 : g.numel() * g.element_size();
    }
}
