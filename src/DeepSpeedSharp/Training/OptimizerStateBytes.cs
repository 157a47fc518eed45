using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Training;

/// <summary>Counts the bytes of the tensors an optimizer keeps as state (moments, momentum buffers), for any optimizer.</summary>
internal static class OptimizerStateBytes
{
    /// <summary>Sum of numel × element size over every distinct tensor held by the optimizer's per-parameter states.</summary>
    public static long Count(optim.Optimizer optimizer)
    {
        if (optimizer is not TorchSharp.Modules.OptimizerHelper helper) return 0;
        var seen = new HashSet<IntPtr>();
        long total = 0;
        foreach (var state in helper.state_dict().State)
        {
            if (state == null) continue;
            for (var type = state.GetType(); type != null && type != typeof(object); type = type.BaseType)
            {
                foreach (var f in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (f.GetValue(state) is Tensor t && t is not TorchSharp.Modules.Parameter && !t.IsInvalid && seen.Add(t.Handle))
                        total += t.numel() * t.element_size();
                }
            }
        }
        return total;
    }
}
