using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// A module whose parameters ZeRO-3 gathers and releases as one: the outermost module on each path that owns
/// parameters directly (its whole subtree's parameters belong to it). Forward hooks gather before it runs, run it
/// without recording a graph, release after, and attach a <see cref="Zero3RecomputeFunction"/> node for backward.
/// </summary>
internal sealed class Zero3Unit : IDisposable
{
    private readonly Stack<(IDisposable? NoGrad, Tensor? Rng)> calls = new();
    private readonly nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover pre;
    private readonly nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover post;

    public Zero3Unit(string name, nn.Module<Tensor, Tensor> module, IReadOnlyList<Zero3Parameter> parameters, Zero3Strategy strategy, int index)
    {
        Name = name;
        Module = module;
        Parameters = parameters;
        Strategy = strategy;
        Index = index;
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

    private Tensor BeforeForward(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        Strategy.BeforeUnitForward(this);
        if (is_grad_enabled()) calls.Push((no_grad(), get_rng_state().DetachFromDisposeScope()));
        else calls.Push((null, null));
        return null!; // null: keep the input (TorchSharp's hook convention)
    }

    private Tensor AfterForward(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output)
    {
        var (noGrad, rng) = calls.Pop();
        noGrad?.Dispose();
        Strategy.AfterUnitForward(this);
        if (noGrad is null || rng is null || !output.is_floating_point()) return null!; // null: keep the output
        var state = new Zero3RecomputeFunction.State { Unit = this, Output = output, RngState = rng };
        return Zero3RecomputeFunction.apply(input, Strategy.Trigger, state);
    }

    public void Dispose()
    {
        pre.remove();
        post.remove();
    }
}
