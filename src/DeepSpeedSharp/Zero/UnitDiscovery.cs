using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>Finds the ZeRO-3 units of a model: the outermost modules on each path that own parameters directly.</summary>
internal static class UnitDiscovery
{
    /// <summary>Each unit's qualified name, module and the partitioned parameters of its subtree, in module order.</summary>
    public static IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module, List<Zero3Parameter> Owned)> Units(
        nn.Module root, IReadOnlyDictionary<IntPtr, Zero3Parameter> byHandle)
    {
        foreach (var (name, module) in DataParallel.ModuleOwners.Of(root))
        {
            if (module is not nn.Module<Tensor, Tensor> hookable) continue;
            var owned = module.parameters().Where(p => byHandle.ContainsKey(p.Handle)).Select(p => byHandle[p.Handle]).Distinct().ToList();
            if (owned.Count > 0) yield return (name, hookable, owned);
        }
    }

    /// <summary>Names of owner modules that cannot be hooked (not nn.Module&lt;Tensor, Tensor&gt;); "" is the root.</summary>
    public static IReadOnlyList<string> UnhookableOwners(nn.Module root, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Param)> trainable) =>
        DataParallel.ModuleOwners.Of(root).Where(o => o.Module is not nn.Module<Tensor, Tensor>).Select(o => o.Name).ToList();
}
