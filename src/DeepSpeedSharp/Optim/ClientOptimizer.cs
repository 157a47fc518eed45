using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// An optimizer the user built over the model's parameters (step 4 of the DeepSpeed guide: create the optimizer, then
/// initialize), carried over to the parameters an engine really optimizes — under ZeRO, this rank's partitions of the
/// fp32 master weights — as DeepSpeed does with a client optimizer: the same type, the same parameter groups and the
/// same hyper-parameters per group.
/// </summary>
/// <remarks>
/// The group of every parameter is taken by name when the engine starts (before a bf16/fp16 cast replaces the
/// parameter objects). A ZeRO strategy lays the trainable parameters out group by group (<see cref="Order"/>), so each
/// rank's partition meets every group in one contiguous range; it then calls <see cref="Rebuild"/> with one parameter
/// per group (that range of its master partition, possibly empty) and steps the result.
/// </remarks>
internal sealed class ClientOptimizer
{
    private readonly Dictionary<string, int> groupOf;

    private ClientOptimizer(optim.Optimizer client, Dictionary<string, int> groupOf, int groups)
    {
        Client = client;
        this.groupOf = groupOf;
        GroupCount = groups;
    }

    /// <summary>The optimizer the user passed in.</summary>
    public optim.Optimizer Client { get; }

    /// <summary>Its number of parameter groups.</summary>
    public int GroupCount { get; }

    /// <summary>
    /// Reads the client's parameter groups by the model's parameter names. Throws, in one line naming the optimizer and
    /// the factory alternative, when its type cannot be carried over.
    /// </summary>
    public static ClientOptimizer Capture(nn.Module model, optim.Optimizer client)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(client);
        if (OptimizerCarryOver.WhyNot(client) is { } why) throw OptimizerCarryOver.Refusal(client, why);
        var names = new Dictionary<IntPtr, string>();
        foreach (var (name, p) in model.named_parameters()) names.TryAdd(p.Handle, name);
        var groupOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = client.ParamGroups.Cast<ParamGroup>().ToList();
        for (int g = 0; g < groups.Count; g++)
            foreach (var p in groups[g].Parameters)
            {
                if (!names.TryGetValue(p.Handle, out var name))
                    throw new ArgumentException($"the optimizer passed to DeepSpeed.Initialize ({client.GetType().Name}) has a parameter in param group {g} " +
                                                "that is not one of the model's: build it over model.parameters()");
                groupOf[name] = g;
            }
        return new ClientOptimizer(client, groupOf, groups.Count);
    }

    /// <summary>
    /// The trainable parameters laid out group by group (model order within a group), and how many of them each group
    /// has. A trainable parameter in no group is an error naming it.
    /// </summary>
    public (IReadOnlyList<(string Name, Parameter Param)> Ordered, int[] GroupSizes) Order(IReadOnlyList<(string Name, Parameter Param)> trainable)
    {
        var missing = trainable.Where(t => !groupOf.ContainsKey(t.Name)).Select(t => t.Name).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"parameter '{missing[0]}'{(missing.Count > 1 ? $" (and {missing.Count - 1} more)" : "")} is trainable but in none of " +
                                        $"the param groups of the optimizer passed to DeepSpeed.Initialize ({Client.GetType().Name}): add it to a group, " +
                                        "or set its requires_grad to false");
        var ordered = trainable.Select((t, i) => (t, i)).OrderBy(x => groupOf[x.t.Name]).ThenBy(x => x.i).Select(x => x.t).ToList();
        var sizes = new int[GroupCount];
        foreach (var t in trainable) sizes[groupOf[t.Name]]++;
        return (ordered, sizes);
    }

    /// <summary>The client's optimizer type and hyper-parameters over <paramref name="perGroup"/> (one parameter for each of its groups, in order).</summary>
    public optim.Optimizer Rebuild(IReadOnlyList<Parameter> perGroup)
    {
        if (perGroup.Count != GroupCount)
            throw new InvalidOperationException($"{perGroup.Count} parameters for the {GroupCount} param groups of {Client.GetType().Name}");
        return OptimizerCarryOver.Rebuild(Client, perGroup);
    }
}
