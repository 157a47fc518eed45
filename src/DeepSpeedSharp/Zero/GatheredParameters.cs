using DeepSpeedSharp.Comm;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// DeepSpeed's <c>zero.GatheredParameters</c>: while this object lives, the given ZeRO-3 parameters hold their full
/// values on every rank (a collective: every rank must create it with the same parameters). With
/// <c>modifierRank</c>, that rank's changes to the full values are broadcast and written back into every rank's
/// partition when it is disposed. Parameters that ZeRO-3 does not partition are left alone.
/// </summary>
public sealed class GatheredParameters : IDisposable
{
    private readonly List<(Zero3Strategy Strategy, Zero3Parameter Param)> gathered = new();
    private readonly int? modifierRank;

    /// <param name="parameters">The parameters to gather.</param>
    /// <param name="modifierRank">The data-parallel group rank whose modifications are kept, or null for read-only use.</param>
    /// <param name="enabled">When false, nothing happens (DeepSpeed's <c>enabled</c>).</param>
    public GatheredParameters(IEnumerable<Parameter> parameters, int? modifierRank = null, bool enabled = true)
    {
        this.modifierRank = modifierRank;
        if (!enabled) return;
        foreach (var p in parameters)
        {
            if (Zero3Strategy.Find(p) is not { } found) continue;
            if (modifierRank is { } r && (r < 0 || r >= found.Strategy.Group.Size))
                throw new ArgumentOutOfRangeException(nameof(modifierRank), $"modifierRank {r} is not a rank of the data-parallel group (size {found.Strategy.Group.Size})");
            found.Strategy.Gather(found.Param);
            gathered.Add(found);
        }
    }

    /// <summary>Broadcasts the modifier's values into every rank's partition (if any), then releases the parameters.</summary>
    public void Dispose()
    {
        foreach (var (strategy, param) in gathered)
        {
            if (modifierRank is { } r)
            {
                using var noGrad = no_grad();
                strategy.Group.Broadcast(param.Param, strategy.Group.GetGlobalRank(r));
                strategy.StoreOwnPartition(param);
            }
            strategy.Release(param);
        }
        gathered.Clear();
    }
}
