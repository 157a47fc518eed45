using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Precision;

/// <summary>
/// Detects inf/nan in gradients (DeepSpeed's <c>has_overflow</c>). Each tensor gets one device-side
/// <c>isfinite(..).all()</c> reduction; the per-tensor flags are combined on the device and read back with a single
/// host sync. Unlike DeepSpeed's sum-based check, large but finite values never count as an overflow.
/// In data-parallel runs the caller all-reduces the flag (max) so every rank skips the same steps.
/// </summary>
public static class OverflowCheck
{
    /// <summary>True when any non-null tensor holds an inf or nan; null entries (parameters without gradients) are skipped.</summary>
    public static bool HasOverflow(IEnumerable<Tensor?> grads)
    {
        ArgumentNullException.ThrowIfNull(grads);
        using var scope = NewDisposeScope();
        Tensor? allFinite = null;
        foreach (var g in grads)
        {
            if (g is null) continue;
            var finite = isfinite(g).all();
            allFinite = allFinite is null ? finite : allFinite.logical_and_(finite);
        }
        return allFinite is not null && !allFinite.item<bool>();
    }

    /// <summary>True when the (flat) tensor holds an inf or nan.</summary>
    public static bool HasOverflow(Tensor flat)
    {
        ArgumentNullException.ThrowIfNull(flat);
        using var scope = NewDisposeScope();
        return !isfinite(flat).all().item<bool>();
    }
}
