using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Reads and writes the per-parameter state of managed TorchSharp optimizers (FusedAdam, Adam, AdamW, SGD, ...)
/// through their public state fields: every <see cref="Tensor"/> field with as many elements as its parameter
/// (e.g. <c>exp_avg</c>, <c>exp_avg_sq</c>, <c>momentum_buffer</c>) is element-wise state that can be cut into flat
/// ranges, and an integer field named <c>step</c> is the parameter's step count. An optimizer with any other kind of
/// state is not reshardable (its state is then saved in TorchSharp's own binary form).
/// </summary>
internal static class OptimizerStateAccess
{
    /// <summary>The name of the step-count field.</summary>
    public const string StepField = "step";

    /// <summary>The state object of every parameter the optimizer manages, by native handle.</summary>
    public static Dictionary<IntPtr, OptimizerState> States(optim.Optimizer optimizer)
    {
        var map = new Dictionary<IntPtr, OptimizerState>();
        if (optimizer is not OptimizerHelper helper) return map;
        var states = helper.state_dict().State;
        int i = 0;
        foreach (var group in optimizer.ParamGroups.Cast<ParamGroup>())
            foreach (var p in group.Parameters)
                if (i < states.Count) map[p.Handle] = states[i++];
        return map;
    }

    /// <summary>Null when every state of the optimizer is element-wise (reshardable); otherwise why not.</summary>
    public static string? WhyNotReshardable(optim.Optimizer optimizer, IEnumerable<Parameter> optimized)
    {
        if (optimizer is not OptimizerHelper)
            return $"{optimizer.GetType().Name} is not a managed TorchSharp optimizer (OptimizerHelper)";
        var states = States(optimizer);
        foreach (var p in optimized)
        {
            if (!states.TryGetValue(p.Handle, out var s)) return $"{optimizer.GetType().Name} has no state for one of its parameters";
            foreach (var f in Fields(s))
            {
                if (f.FieldType == typeof(Tensor))
                {
                    if (f.GetValue(s) is Tensor t && t.numel() != p.numel())
                        return $"{optimizer.GetType().Name}.State.{f.Name} has {t.numel()} elements for a parameter of {p.numel()}";
                }
                else if (f.Name == StepField && f.FieldType != typeof(long) && f.FieldType != typeof(int))
                    return $"{optimizer.GetType().Name}.State.step is a {f.FieldType.Name}";
            }
        }
        return null;
    }

    /// <summary>The element-wise state tensors currently allocated for a parameter, by field name, in declaration order.</summary>
    public static IEnumerable<(string Kind, Tensor Value)> Tensors(OptimizerState state)
    {
        foreach (var f in Fields(state))
            if (f.FieldType == typeof(Tensor) && f.GetValue(state) is Tensor t && !t.IsInvalid)
                yield return (f.Name, t);
    }

    /// <summary>The state tensor <paramref name="kind"/> of a parameter, allocated as zeros like the parameter if absent
    /// (e.g. SGD's momentum buffer before the first step).</summary>
    public static Tensor TensorFor(OptimizerState state, string kind, Parameter parameter)
    {
        var f = Fields(state).FirstOrDefault(x => x.Name == kind && x.FieldType == typeof(Tensor))
            ?? throw new InvalidDataException($"the checkpoint has optimizer state '{kind}', which {state.GetType().DeclaringType?.Name ?? state.GetType().Name} does not keep");
        if (f.GetValue(state) is Tensor t && !t.IsInvalid) return t;
        var created = zeros_like(parameter).DetachFromDisposeScope();
        f.SetValue(state, created);
        return created;
    }

    /// <summary>The step count of a parameter's state, or null when the optimizer keeps none.</summary>
    public static long? GetStep(OptimizerState state)
    {
        var f = Fields(state).FirstOrDefault(x => x.Name == StepField);
        return f?.GetValue(state) switch { long l => l, int i => i, _ => null };
    }

    /// <summary>Sets the step count (ignored by optimizers without one).</summary>
    public static void SetStep(OptimizerState state, long step)
    {
        var f = Fields(state).FirstOrDefault(x => x.Name == StepField);
        if (f == null) return;
        if (f.FieldType == typeof(long)) f.SetValue(state, step);
        else if (f.FieldType == typeof(int)) f.SetValue(state, checked((int)step));
    }

    private static IEnumerable<FieldInfo> Fields(OptimizerState state) =>
        state.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public);
}
