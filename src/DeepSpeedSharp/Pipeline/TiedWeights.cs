using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// Weights shared by layers on different stages (<see cref="TiedLayerSpec"/>, e.g. the embedding and the LM head), as
/// DeepSpeed's <c>_index_tied_modules</c>, <c>_synchronize_tied_weights</c> and <c>allreduce_tied_weight_gradients</c>:
/// for each tie key and each (data, tensor) coordinate, the ranks of the stages holding the key form a group; the
/// weights start equal (broadcast from the group's first rank) and their gradients are summed over the group before
/// the optimizer step, so every copy takes the same update. Copies outside the group's first rank are marked
/// <see cref="ParallelParameterExtensions.IsPipeReplicated"/> so that the gradient norm counts them once.
/// </summary>
internal sealed class TiedWeights : IDisposable
{
    private readonly List<Tie> ties = new();
    private readonly List<ProcessGroup> owned = new();
    private readonly Dictionary<string, Tensor> stash = new(StringComparer.Ordinal);

    private sealed record Tie(string Key, nn.Module Module, IReadOnlyList<string> Attributes, ProcessGroup Group, int SourceGlobalRank);

    /// <param name="grid">The topology.</param>
    /// <param name="specs">Every layer of the pipeline.</param>
    /// <param name="stageOf">The stage holding a layer.</param>
    /// <param name="localModules">This stage's tied modules by key.</param>
    public TiedWeights(PipelineParallelGrid grid, IReadOnlyList<LayerSpec> specs, Func<int, int> stageOf,
        IReadOnlyDictionary<string, nn.Module> localModules)
    {
        if (grid.PipeParallelSize == 1) return; // one stage holds every copy: nothing to share
        var topology = grid.Topology;
        try
        {
            foreach (var key in specs.OfType<TiedLayerSpec>().Select(s => s.Key).Distinct().Order(StringComparer.Ordinal))
            {
                var stages = specs.Select((s, i) => (s, i)).Where(x => x.s is TiedLayerSpec t && t.Key == key)
                    .Select(x => stageOf(x.i)).Distinct().Order().ToArray();
                if (stages.Length < 2) continue;
                var attributes = specs.OfType<TiedLayerSpec>().First(t => t.Key == key).TiedWeightAttributes;
                // One group per (data, tensor) coordinate, created in the same order on every rank.
                for (int r = 0; r < topology.WorldSize; r++)
                {
                    var coord = topology.GetCoord(r);
                    if (coord.Pipe != stages[0]) continue;
                    var ranks = stages.Select(s => topology.GetRank(coord.With(Axis.Pipe, s).ToDictionary())).ToArray();
                    var group = Dist.NewGroup(ranks);
                    owned.Add(group);
                    if (!group.IsMember) continue;
                    if (!localModules.TryGetValue(key, out var module))
                        throw new InvalidOperationException($"rank {grid.GlobalRank} is in the tie group of '{key}' but built no module for it");
                    ties.Add(new Tie(key, module, attributes, group, ranks[0]));
                    if (grid.GlobalRank != ranks[0])
                        foreach (var p in module.parameters()) p.MarkPipeReplicated();
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>True when this stage shares a weight with another stage.</summary>
    public bool Any => ties.Count > 0;

    /// <summary>The tie keys this stage holds with another stage.</summary>
    public IReadOnlyList<string> Keys => ties.Select(t => t.Key).ToList();

    /// <summary>Makes every copy equal to the group's first rank's (DeepSpeed's <c>_synchronize_tied_weights</c>).</summary>
    public void Synchronize()
    {
        using var noGrad = no_grad();
        foreach (var tie in ties)
            foreach (var (_, w) in Weights(tie))
                tie.Group.Broadcast(w, tie.SourceGlobalRank);
    }

    /// <summary>
    /// Moves the tied weights' gradients of this micro-batch into a private fp32 sum and zeroes them, for a strategy that
    /// takes gradients out of the parameters after every micro-batch (ZeRO-2, fp32 accumulation): it then sees zero for
    /// them until the last micro-batch, when <see cref="ReduceGradients"/> hands over the whole sum. (Summing over the tie
    /// group after every micro-batch instead would make the stages wait for each other inside the 1F1B schedule.)
    /// </summary>
    public void StashGradients()
    {
        using var noGrad = no_grad();
        foreach (var tie in ties)
            foreach (var (name, w) in Weights(tie))
            {
                if (w.grad is not { } g) continue;
                string key = $"{tie.Key}.{name}";
                if (stash.TryGetValue(key, out var sum)) sum.add_(g);
                else stash[key] = g.to(ScalarType.Float32, copy: true).DetachFromDisposeScope();
                g.zero_();
            }
    }

    /// <summary>
    /// Sums the tied weights' gradients (plus anything stashed) over their groups, in fp32 when stashed (DeepSpeed's
    /// <c>allreduce_tied_weight_gradients</c>).
    /// </summary>
    public void ReduceGradients()
    {
        using var noGrad = no_grad();
        foreach (var tie in ties)
            foreach (var (name, w) in Weights(tie))
            {
                if (w.grad is not { } g) continue;
                if (stash.Remove($"{tie.Key}.{name}", out var sum))
                {
                    sum.add_(g);
                    tie.Group.AllReduce(sum, ReduceOp.Sum);
                    g.copy_(sum);
                    sum.Dispose();
                }
                else tie.Group.AllReduce(g, ReduceOp.Sum);
            }
    }

    /// <summary>The tied parameters, looked up by name each time (a dtype conversion replaces the parameter objects).</summary>
    private static IEnumerable<(string Name, Parameter Weight)> Weights(Tie tie)
    {
        var byName = tie.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var attribute in tie.Attributes)
            yield return byName.TryGetValue(attribute, out var p) ? (attribute, p)
                : throw new ArgumentException($"tied layer '{tie.Key}': the module {tie.Module.GetName()} has no parameter '{attribute}' " +
                                              $"(its parameters: {string.Join(", ", byName.Keys)})");
    }

    /// <summary>The part owning layer <paramref name="layer"/> (parts[j] ≤ layer &lt; parts[j + 1]).</summary>
    public static int StageOf(IReadOnlyList<int> parts, int layer)
    {
        for (int s = 0; s < parts.Count - 1; s++)
            if (layer >= parts[s] && layer < parts[s + 1]) return s;
        throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} is outside the partition [{string.Join(", ", parts)}]");
    }

    public void Dispose()
    {
        foreach (var g in owned) g.Dispose();
        owned.Clear();
        foreach (var t in stash.Values) t.Dispose();
        stash.Clear();
        ties.Clear();
    }
}
