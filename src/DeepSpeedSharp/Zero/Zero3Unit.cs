using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// A module whose parameters ZeRO-3 gathers and releases as one: the outermost module on each path that owns
/// parameters directly (its whole subtree's parameters belong to it). Forward hooks gather before it runs, run it
/// without recording a graph, release after, and attach a backward node: <see cref="Zero3LinearFunction"/> (no
/// recomputation) when the unit is a Linear fed a contiguous input, otherwise <see cref="Zero3RecomputeFunction"/>.
/// </summary>
internal sealed class Zero3Unit : IDisposable
{
    private readonly Stack<Call> calls = new();
    private readonly nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover pre;
    private readonly nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover post;
    private readonly Zero3LinearFunction.LinearParameters? linear;

    /// <summary>One forward call in flight: the no_grad scope (null when grad was off) and how backward will run.</summary>
    private readonly record struct Call(IDisposable? NoGrad, Tensor? Rng, bool Linear);

    public Zero3Unit(string name, nn.Module<Tensor, Tensor> module, IReadOnlyList<Zero3Parameter> parameters, Zero3Strategy strategy, int index)
    {
        Name = name;
        Module = module;
        Parameters = parameters;
        Strategy = strategy;
        Index = index;
        PartitionedElements = parameters.Where(p => !p.Persistent).Sum(p => p.Numel);
        linear = strategy.RecomputeAll ? null : Zero3LinearFunction.Match(module, parameters);
        pre = module.register_forward_pre_hook(BeforeForward);
        post = module.register_forward_hook(AfterForward);
    }

    public string Name { get; }
    public nn.Module<Tensor, Tensor> Module { get; }
    public IReadOnlyList<Zero3Parameter> Parameters { get; }
    public Zero3Strategy Strategy { get; }

    /// <summary>Position in the module tree (for traces and logs).</summary>
    public int Index { get; }

    /// <summary>Bytes of the unit's parameters when gathered.</summary>
    public long FullBytes => Parameters.Sum(p => p.FullBytes);

    /// <summary>Elements a fetch of this unit gathers: those of its parameters that are not persistent (fixed at construction).</summary>
    public long PartitionedElements { get; }

    /// <summary>True when the unit is a Linear whose backward runs without recomputing its forward.</summary>
    public bool HasLinearFastPath => linear is not null;

    /// <summary>How many times backward re-ran this unit's forward (the recompute path).</summary>
    public int Recomputations { get; internal set; }

    private Tensor BeforeForward(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        Strategy.BeforeUnitForward(this);
        // Without grad, or when autograd's graph may keep the gathered parameters (the prefetcher releases nothing until
        // backward ended), the unit runs as written and needs no backward node of its own.
        if (!is_grad_enabled() || Strategy.KeepsGraph) calls.Push(new Call(null, null, false));
        else if (linear is not null && Zero3LinearFunction.Supports(input)) calls.Push(new Call(no_grad(), null, true));
        else calls.Push(new Call(no_grad(), get_rng_state().DetachFromDisposeScope(), false));
        return null!; // null: keep the input (TorchSharp's hook convention)
    }

    private Tensor AfterForward(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output)
    {
        var call = calls.Pop();
        call.NoGrad?.Dispose();
        Strategy.AfterUnitForward(this);
        if (call.NoGrad is null || !output.is_floating_point())
        {
            call.Rng?.Dispose();
            return null!; // null: keep the output
        }
        if (call.Linear)
            return Zero3LinearFunction.apply(input, Strategy.Trigger, new Zero3LinearFunction.State { Unit = this, Output = output, Linear = linear! });
        var state = new Zero3RecomputeFunction.State { Unit = this, Output = output, RngState = call.Rng! };
        return Zero3RecomputeFunction.apply(input, Strategy.Trigger, state);
    }

    public void Dispose()
    {
        pre.remove();
        post.remove();
    }
}
