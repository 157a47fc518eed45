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
        foreach (var (name, module) in Owners(root, ""))
        {
            if (module is not nn.Module<Tensor, Tensor> hookable) continue;
            var owned = module.parameters().Where(p => byHandle.ContainsKey(p.Handle)).Select(p => byHandle[p.Handle]).Distinct().ToList();
            if (owned.Count > 0) yield return (name, hookable, owned);
        }
    }

    /// <summary>Names of owner modules that cannot be hooked (not nn.Module&lt;Tensor, Tensor&gt;); "" is the root.</summary>
    public static IReadOnlyList<string> UnhookableOwners(nn.Module root, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Param)> trainable) =>
        Owners(root, "").Where(o => o.Module is not nn.Module<Tensor, Tensor>).Select(o => o.Name).ToList();

    private static IEnumerable<(string Name, nn.Module Module)> Owners(nn.Module module, string prefix)
    {
        if (module.named_parameters(recurse: false).Any())
        {
            yield return (prefix, module);
            yield break;
        }
        foreach (var (childName, child) in module.named_children())
            foreach (var owner in Owners(child, prefix.Length == 0 ? childName : $"{prefix}.{childName}"))
                yield return owner;
    }
}
