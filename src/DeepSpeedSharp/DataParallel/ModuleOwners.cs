using TorchSharp;

namespace DeepSpeedSharp.DataParallel;

/// <summary>The outermost modules on each path of a module tree that own parameters directly (with their qualified names).</summary>
internal static class ModuleOwners
{
    /// <summary>Owners in module order; "" names the root when it owns parameters itself.</summary>
    public static IEnumerable<(string Name, torch.nn.Module Module)> Of(torch.nn.Module root) => Walk(root, "");

    private static IEnumerable<(string Name, torch.nn.Module Module)> Walk(torch.nn.Module module, string prefix)
    {
        if (module.named_parameters(recurse: false).Any())
        {
            yield return (prefix, module);
            yield break;
        }
        foreach (var (childName, child) in module.named_children())
            foreach (var owner in Walk(child, prefix.Length == 0 ? childName : $"{prefix}.{childName}"))
                yield return owner;
    }
}
