using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// Adam / AdamW with the semantics of DeepSpeed's <c>deepspeed.ops.adam.FusedAdam</c> (the optimizer DeepSpeed builds
/// for <c>"type": "Adam"</c> / <c>"AdamW"</c>), computed on the CPU with in-place TorchSharp tensor operations.
/// </summary>
/// <remarks>
/// <para>Per parameter with a gradient (t = that parameter's step count, bc1 = 1 − β1^t and bc2 = 1 − β2^t when
/// <c>bias_correction</c> is true, else 1), the update of DeepSpeed's <c>multi_tensor_adam</c> kernel:</para>
/// <code>
/// adam_w_mode = false (L2):   g = g + wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p = p − lr·(m/bc1) / (√(v/bc2) + eps)
/// adam_w_mode = true (AdamW): m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p = p − lr·((m/bc1) / (√(v/bc2) + eps) + wd·p)
/// </code>
/// <para>It is evaluated in the operation order of DeepSpeed's CPU Adam and of <c>torch.optim.Adam/AdamW</c>
/// (p·(1 − lr·wd), then p − (lr/bc1)·m / (√v/√bc2 + eps)), which is the same arithmetic with fewer roundings and one
/// temporary per parameter.</para>
/// <para>Differences from DeepSpeed, all deliberate: the moments of bf16/fp16 parameters are kept in fp32 (FusedAdam keeps
/// them in the parameter's dtype) and the update is computed in fp32 then rounded into the parameter; the step count is
/// per parameter (as in <c>torch.optim.Adam</c>), which equals DeepSpeed's group count whenever every parameter of the
/// group has a gradient; <c>zero_grad()</c> zeroes gradients in place instead of setting them to null
/// (<c>set_grad_none</c>), so gradients that are views of a flat buffer survive. AMSGrad is rejected, as in DeepSpeed.</para>
/// </remarks>
public sealed partial class FusedAdam : OptimizerHelper, optim.IBetas
{
    /// <summary>Creates the optimizer over one parameter group.</summary>
    /// <param name="parameters">The parameters to optimize.</param>
    /// <param name="lr">Learning rate (DeepSpeed <c>lr</c>, default 1e-3).</param>
    /// <param name="biasCorrection">Whether to divide the moments by 1 − β^t (DeepSpeed <c>bias_correction</c>, default true).</param>
    /// <param name="beta1">β1 (first value of DeepSpeed <c>betas</c>, default 0.9).</param>
    /// <param name="beta2">β2 (second value of DeepSpeed <c>betas</c>, default 0.999).</param>
    /// <param name="eps">Denominator term (DeepSpeed <c>eps</c>, default 1e-8).</param>
    /// <param name="adamWMode">True: decoupled weight decay (AdamW); false: L2 penalty added to the gradient (Adam).
    /// DeepSpeed <c>adam_w_mode</c>, default true.</param>
    /// <param name="weightDecay">Weight decay (DeepSpeed <c>weight_decay</c>, default 0).</param>
    /// <param name="amsgrad">Must be false: FusedAdam does not support AMSGrad.</param>
    public FusedAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, bool biasCorrection = true, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, bool adamWMode = true, double weightDecay = 0, bool amsgrad = false)
        : this(new[] { new ParamGroup(parameters) }, lr, biasCorrection, beta1, beta2, eps, adamWMode, weightDecay, amsgrad)
    {
    }

    /// <summary>Creates the optimizer over several parameter groups; options a group leaves unset take these defaults.</summary>
    /// <inheritdoc cref="FusedAdam(IEnumerable{Parameter}, double, bool, double, double, double, bool, double, bool)"/>
    public FusedAdam(IEnumerable<ParamGroup> parameters, double lr = 1e-3, bool biasCorrection = true, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, bool adamWMode = true, double weightDecay = 0, bool amsgrad = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (amsgrad)
            throw new ArgumentException(
                "FusedAdam does not support the AMSGrad variant (optimizer.params.amsgrad = true). Set amsgrad to false, " +
                "or set torch_adam = true to use torch.optim.Adam/AdamW, which support it.", nameof(amsgrad));
        var defaults = new Options
        {
            LearningRate = lr, InitialLearningRate = lr, beta1 = beta1, beta2 = beta2, eps = eps,
            weight_decay = weightDecay, bias_correction = biasCorrection,
        };
        Validate(defaults, "defaults");
        AdamWMode = adamWMode;
        _defaults = defaults;
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup>();
        foreach (var group in parameters) add_param_group(group);
    }

    /// <summary>True when weight decay is decoupled (AdamW, DeepSpeed <c>adam_w_mode</c>); false for L2 (Adam).</summary>
    public bool AdamWMode { get; }

    /// <summary>The default (β1, β2) applied to groups added later.</summary>
    public (double, double) Betas
    {
        get => (((Options)_defaults).beta1!.Value, ((Options)_defaults).beta2!.Value);
        set { ((Options)_defaults).beta1 = value.Item1; ((Options)_defaults).beta2 = value.Item2; }
    }

    /// <summary>The number of optimizer steps applied to <paramref name="parameter"/> (0 before its first step).</summary>
    public long StepCount(Parameter parameter) => GetState(parameter).step;

    /// <summary>The first moment (exp_avg) of <paramref name="parameter"/>; owned by the optimizer, do not dispose.</summary>
    public Tensor ExpAvg(Parameter parameter) => GetState(parameter).exp_avg;

    /// <summary>The second moment (exp_avg_sq) of <paramref name="parameter"/>; owned by the optimizer, do not dispose.</summary>
    public Tensor ExpAvgSq(Parameter parameter) => GetState(parameter).exp_avg_sq;

    /// <summary>Applies one Adam/AdamW update to every parameter that has a gradient.</summary>
    /// <param name="closure">Optional closure re-evaluating the loss; its result is returned.</param>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        return _step<ParamGroup>(group =>
        {
            var o = group.Options;
            double lr = o.LearningRate!.Value, beta1 = o.beta1!.Value, beta2 = o.beta2!.Value;
            double eps = o.eps!.Value, decay = o.weight_decay!.Value;
            bool biasCorrection = o.bias_correction!.Value;
            foreach (var p in group.Parameters)
            {
                var grad = p.grad;
                if (grad is null) continue;
                var state = GetState(p);
                state.step += 1;
                var bc1 = biasCorrection ? 1 - Math.Pow(beta1, state.step) : 1.0;
                var bc2 = biasCorrection ? 1 - Math.Pow(beta2, state.step) : 1.0;
                // Low-precision parameters are updated through an fp32 copy; fp32/fp64 ones in place.
                var sameType = p.dtype == state.exp_avg.dtype;
                var work = sameType ? p : p.to(state.exp_avg.dtype);
                var g = grad.dtype == state.exp_avg.dtype ? grad : grad.to(state.exp_avg.dtype);
                Update(work, g, state.exp_avg, state.exp_avg_sq, lr, beta1, beta2, eps, decay, bc1, bc2, AdamWMode);
                if (!sameType) p.copy_(work);
            }
        }, closure!);
    }

    private static void Update(Tensor p, Tensor g, Tensor m, Tensor v, double lr, double beta1, double beta2, double eps,
        double decay, double bc1, double bc2, bool adamW)
    {
        if (decay != 0)
        {
            if (adamW) p.mul_(1 - lr * decay);
            else g = g.add(p, alpha: decay);
        }
        m.mul_(beta1).add_(g, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        var denom = v.sqrt().div_(Math.Sqrt(bc2)).add_(eps);
        p.addcdiv_(m, denom, value: -lr / bc1);
    }

    /// <summary>Adds a parameter group; its unset options take the optimizer's defaults. Moments are allocated now
    /// (fp32 for bf16/fp16 parameters, otherwise the parameter's dtype).</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        ArgumentNullException.ThrowIfNull(param_group);
        if (param_group is not ParamGroup)
            throw new ArgumentException(
                $"FusedAdam needs parameter groups of type {typeof(ParamGroup).FullName}, got {param_group.GetType().FullName}.",
                nameof(param_group));
        var def = (Options)_defaults;
        param_group.Options ??= new Options();
        var o = (Options)param_group.Options;
        o.LearningRate ??= def.LearningRate;
        o.beta1 ??= def.beta1;
        o.beta2 ??= def.beta2;
        o.eps ??= def.eps;
        o.weight_decay ??= def.weight_decay;
        o.bias_correction ??= def.bias_correction;
        o.InitialLearningRate = o.LearningRate!.Value;
        Validate(o, $"param group {_parameter_groups.Count}");

        var parameters = param_group.Parameters?.ToList()
            ?? throw new ArgumentException($"param group {_parameter_groups.Count} has no Parameters.", nameof(param_group));
        foreach (var p in parameters)
        {
            if (_state.ContainsKey(p.Handle))
                throw new ArgumentException("some parameters appear in more than one parameter group.", nameof(param_group));
            if (!p.is_floating_point())
                throw new ArgumentException($"FusedAdam only supports floating-point parameters, got {p.dtype}.", nameof(param_group));
        }
        param_group.Parameters = parameters;
        _parameter_groups.Add(param_group);
        foreach (var p in parameters)
        {
            var state = new State(p);
            state.Initialize(o);
            _state[p.Handle] = state;
        }
    }

    /// <summary>Disposes the optimizer and its moment tensors.</summary>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var kv in _state) ((State)kv.Item2).Dispose();
    }

    private State GetState(Parameter p) =>
        _state.TryGetValue(p.Handle, out var s) ? (State)s
            : throw new ArgumentException("the parameter is not managed by this FusedAdam optimizer.", nameof(p));

    private static void Validate(Options o, string where)
    {
        if (!(o.LearningRate >= 0)) throw new ArgumentException($"FusedAdam {where}: lr must be >= 0, got {o.LearningRate}.");
        if (!(o.eps >= 0)) throw new ArgumentException($"FusedAdam {where}: eps must be >= 0, got {o.eps}.");
        if (!(o.beta1 >= 0 && o.beta1 < 1)) throw new ArgumentException($"FusedAdam {where}: betas[0] must be in [0, 1), got {o.beta1}.");
        if (!(o.beta2 >= 0 && o.beta2 < 1)) throw new ArgumentException($"FusedAdam {where}: betas[1] must be in [0, 1), got {o.beta2}.");
        if (!(o.weight_decay >= 0)) throw new ArgumentException($"FusedAdam {where}: weight_decay must be >= 0, got {o.weight_decay}.");
    }
}
