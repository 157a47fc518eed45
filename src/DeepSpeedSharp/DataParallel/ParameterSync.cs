using DeepSpeedSharp.Comm;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.DataParallel;

/// <summary>Makes every rank start from the same weights: broadcasts parameters from one rank, flattened per dtype.</summary>
internal static class ParameterSync
{
    public static void Broadcast(IReadOnlyList<Parameter> parameters, ProcessGroup group, int srcGlobalRank)
    {
        if (group.Size <= 1) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var byType in parameters.GroupBy(p => (p.dtype, p.device.ToString())))
        {
            var list = byType.ToList();
            var flat = cat(list.Select(p => p.detach().reshape(-1)).ToList(), 0);
            group.Broadcast(flat, srcGlobalRank);
            long offset = 0;
            foreach (var p in list)
            {
                p.copy_(flat.narrow(0, offset, p.numel()).view(p.shape));
                offset += p.numel();
            }
        }
    }
}
