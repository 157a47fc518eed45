using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// The ZeRO-3 fast path for a unit that is exactly a <see cref="Linear"/>: joins the output (computed without a graph,
/// so the gathered weight could be released) back into autograd like <see cref="Zero3RecomputeFunction"/>, but its
/// backward recomputes nothing. It saves only the input; backward gathers the weight (and bias) again and computes
/// grad_x = g·W, grad_W = gᵀ·x and grad_b = Σg over the flattened batch dimensions — the same kernels, operands and
/// order as libtorch's backward of <c>linear</c>, so the gradients are bit-identical to the recompute path — hands
/// grad_W/grad_b to the strategy for reduce-scatter, and releases. Inputs: [input, trigger, state].
/// </summary>
internal sealed class Zero3LinearFunction : autograd.SingleTensorFunction<Zero3LinearFunction>
{
    public override string Name => "Zero3LinearBackward";

    /// <summary>The partitioned weight and (optional) bias of a Linear unit.</summary>
    internal sealed record LinearParameters(Zero3Parameter Weight, Zero3Parameter? Bias);

    /// <summary>What the backward needs, carried as plain data in the autograd context.</summary>
    internal sealed class State : Zero3UnitNodeState
    {
        public required LinearParameters Linear { get; init; }
    }

    /// <summary>
    /// The weight and bias when <paramref name="module"/> is a <see cref="Linear"/> whose parameters are exactly
    /// <paramref name="owned"/> and all require grad; null otherwise (the unit then uses recomputation).
    /// </summary>
    public static LinearParameters? Match(nn.Module module, IReadOnlyList<Zero3Parameter> owned)
    {
        if (module is not Linear) return null;
        var named = module.named_parameters(recurse: true).ToList();
        if (named.Count != owned.Count || named.Any(n => !n.parameter.requires_grad)) return null;
        Zero3Parameter? Find(string name) =>
            named.Where(n => n.name == name).Select(n => owned.FirstOrDefault(z => z.Param.Handle == n.parameter.Handle)).FirstOrDefault();
        var weight = Find("weight");
        var bias = Find("bias");
        bool hasBias = named.Any(n => n.name == "bias");
        if (weight is null || weight.Shape.Length != 2 || (hasBias && bias is null) || named.Count != (hasBias ? 2 : 1)) return null;
        return new LinearParameters(weight, bias);
    }

    /// <summary>
    /// True when libtorch computes <c>linear</c> for this input as one matrix product over the flattened batch
    /// (input of 2+ dimensions, contiguous), which is what the backward here mirrors exactly.
    /// </summary>
    public static bool Supports(Tensor input) => input.dim() >= 2 && input.is_contiguous() && input.is_floating_point();

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars) => Zero3UnitNode.Forward(ctx, vars);

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var (input, state) = Zero3UnitNode.Saved<State>(ctx);
        var unit = state.Unit;
        var (weight, bias) = state.Linear;
        Tensor? inputGrad = null;
        unit.Strategy.BeforeUnitBackward(unit);
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var w = weight.Param;
            long outFeatures = weight.Shape[0], inFeatures = weight.Shape[1];
            // linear(x, W, b) = addmm(b, x2d, Wᵀ) viewed back (or mm without bias): mm's backward gives
            // grad_x2d = g2d·W and, Wᵀ being column-major, grad_Wᵀ = (g2dᵀ·x2d)ᵀ; the bias gets g2d summed over rows.
            var g = gradOutput.reshape(-1, outFeatures);
            if (input.requires_grad && input.is_floating_point())
                inputGrad = g.mm(w).reshape(input.shape).MoveToOuterDisposeScope();
            var x = input.reshape(-1, inFeatures);
            Accumulate(weight, g.t().mm(x));
            if (bias is not null) Accumulate(bias, g.sum(dim: 0));
        }
        unit.Strategy.AfterUnitBackward(unit);
        return new List<Tensor> { inputGrad!, null!, null! };
    }

    /// <summary>Adds a gradient to the parameter's .grad the way autograd's accumulation would.</summary>
    private static void Accumulate(Zero3Parameter target, Tensor grad)
    {
        using var existing = target.Param.grad;
        if (existing is null) target.Param.grad = grad;
        else existing.add_(grad);
    }
}
