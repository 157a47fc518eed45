using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Joins a ZeRO-3 unit's output (computed without a graph, so the gathered parameters could be released) back into
/// autograd. Its backward gathers the unit's parameters again, re-runs the unit's forward with the same RNG state,
/// back-propagates through it, hands the parameter gradients to the strategy for reduce-scatter, and returns the
/// gradient of the unit's input. Inputs: [input, trigger, state]; the trigger is a scalar that requires grad, so
/// the node exists even when the input does not require grad (token ids).
/// </summary>
internal sealed class Zero3RecomputeFunction : autograd.SingleTensorFunction<Zero3RecomputeFunction>
{
    public override string Name => "Zero3Recompute";

    /// <summary>What the backward needs, carried as plain data in the autograd context.</summary>
    internal sealed class State : Zero3UnitNodeState
    {
        public required Tensor RngState { get; init; }
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars) => Zero3UnitNode.Forward(ctx, vars);

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var (input, state) = Zero3UnitNode.Saved<State>(ctx);
        var unit = state.Unit;
        Tensor? inputGrad = null;
        unit.Recomputations++;
        unit.Strategy.BeforeUnitBackward(unit);
        // A scope of its own: every tensor the recomputed forward creates (each layer's activations, held by their .NET
        // handles) is freed when this unit's backward ends, not when the caller's step scope ends.
        using (var scope = NewDisposeScope())
        using (var current = get_rng_state())
        using (enable_grad())
        {
            var x = input.detach();
            bool wantsInputGrad = input.requires_grad && input.is_floating_point();
            if (wantsInputGrad) x.requires_grad_(true);
            set_rng_state(state.RngState);
            using (var y = unit.Module.forward(x))
            {
                set_rng_state(current);
                y.backward(new[] { gradOutput });
            }
            if (wantsInputGrad) inputGrad = x.grad?.detach().MoveToOuterDisposeScope();
        }
        unit.Strategy.AfterUnitBackward(unit);
        state.RngState.Dispose();
        return new List<Tensor> { inputGrad!, null!, null! };
    }
}
