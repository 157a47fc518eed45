namespace DeepSpeedSharp.Profiling;

/// <summary>
/// What the flops profiler measured for one module (and, through <see cref="Children"/>, its submodules) during the
/// profiled forward passes. Totals include the children.
/// </summary>
public sealed class ModuleProfile
{
    internal ModuleProfile(string name, string typeName, int depth, long parameters)
    {
        Name = name;
        TypeName = typeName;
        Depth = depth;
        Parameters = parameters;
    }

    /// <summary>Attribute path from the root ("" for the root, "transformer.h.0.attn").</summary>
    public string Name { get; }

    /// <summary>The module's .NET type name.</summary>
    public string TypeName { get; }

    /// <summary>0 for the root, 1 for its children, ...</summary>
    public int Depth { get; }

    /// <summary>Number of parameter elements in the module and its children.</summary>
    public long Parameters { get; }

    /// <summary>Forward calls seen.</summary>
    public int Calls { get; internal set; }

    /// <summary>Cost of the module's own work (not its children's), summed over calls.</summary>
    public OpCost OwnCost { get; internal set; }

    /// <summary>Forward time measured by the hooks (children included); null when the module cannot be hooked.</summary>
    internal TimeSpan? MeasuredLatency { get; set; }

    /// <summary>Submodules in registration order.</summary>
    public IReadOnlyList<ModuleProfile> Children => children;

    internal readonly List<ModuleProfile> children = [];
    internal readonly Stack<long> starts = new();

    /// <summary>MACs of the module and its children.</summary>
    public long Macs => OwnCost.Macs + children.Sum(c => c.Macs);

    /// <summary>FLOPs of the module and its children.</summary>
    public long Flops => OwnCost.Flops + children.Sum(c => c.Flops);

    /// <summary>Forward latency summed over calls (for a module without hooks, the sum of its children's).</summary>
    public TimeSpan Latency => MeasuredLatency ?? children.Aggregate(TimeSpan.Zero, (t, c) => t + c.Latency);

    /// <summary>This module and all its descendants, depth-first.</summary>
    public IEnumerable<ModuleProfile> Flatten()
    {
        yield return this;
        foreach (var c in children)
            foreach (var d in c.Flatten()) yield return d;
    }

    internal void Reset()
    {
        Calls = 0;
        OwnCost = OpCost.Zero;
        MeasuredLatency = MeasuredLatency.HasValue ? TimeSpan.Zero : null;
        starts.Clear();
        foreach (var c in children) c.Reset();
    }
}
