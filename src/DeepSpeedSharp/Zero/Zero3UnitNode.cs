using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>What every ZeRO-3 unit backward node carries: the unit, and its output computed without a graph.</summary>
internal abstract class Zero3UnitNodeState
{
    public required Zero3Unit Unit { get; init; }
    public required Tensor Output { get; init; }
}

/// <summary>
/// The forward shared by the ZeRO-3 backward nodes (<see cref="Zero3RecomputeFunction"/>, <see cref="Zero3LinearFunction"/>):
/// inputs are [input, trigger, state]; the node keeps the input and the state and passes the precomputed output on.
/// </summary>
internal static class Zero3UnitNode
{
    public static Tensor Forward(autograd.AutogradContext ctx, object[] vars)
    {
        var state = (Zero3UnitNodeState)vars[2];
        ctx.save_for_backward(new List<Tensor> { (Tensor)vars[0] });
        ctx.save_data("state", state);
        return state.Output;
    }

    /// <summary>The saved input and state, in the node's backward.</summary>
    public static (Tensor Input, TState State) Saved<TState>(autograd.AutogradContext ctx) where TState : Zero3UnitNodeState =>
        (ctx.get_saved_variables()[0], (TState)ctx.get_data("state"));
}
