using DeepSpeedSharp.Optim.CpuAdam;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// What <see cref="FusedAdam"/> and <see cref="DeepSpeedCpuAdam"/> share: DeepSpeed's Adam hyper-parameters
/// (<c>lr</c>, <c>betas</c>, <c>eps</c>, <c>weight_decay</c>, <c>bias_correction</c>, <c>adam_w_mode</c>) as per-group
/// <see cref="Options"/>, the per-parameter <see cref="State"/> (<c>step</c>, <c>exp_avg</c>, <c>exp_avg_sq</c>),
/// parameter groups, validation and state access. A derived optimizer supplies only its update (<c>step</c>) and which
/// parameters it accepts (<see cref="CheckParameter"/>).
/// </summary>
/// <remarks>The state is saved and loaded in TorchSharp's binary optimizer format; both optimizers write the same layout.
/// AMSGrad is rejected, as in DeepSpeed. <c>zero_grad()</c> zeroes gradients in place.</remarks>
public abstract partial class AdamOptimizerBase : OptimizerHelper, optim.IBetas
{
    private readonly Dictionary<IntPtr, ParamGroup> _groupOf = new();

    /// <summary>Sets up the defaults (validated) without adding any parameter group: the derived constructor calls
    /// <see cref="AddParamGroups"/> once its own settings are in place.</summary>
    /// <param name="name">The optimizer's name in error messages.</param>
    /// <param name="lr">Learning rate (DeepSpeed <c>lr</c>).</param>
    /// <param name="biasCorrection">DeepSpeed <c>bias_correction</c>.</param>
    /// <param name="beta1">β1 (first value of DeepSpeed <c>betas</c>).</param>
    /// <param name="beta2">β2 (second value of DeepSpeed <c>betas</c>).</param>
    /// <param name="eps">DeepSpeed <c>eps</c>.</param>
    /// <param name="adamWMode">True: decoupled weight decay (AdamW); false: L2 penalty (Adam).</param>
    /// <param name="weightDecay">DeepSpeed <c>weight_decay</c>.</param>
    /// <param name="amsgrad">Must be false.</param>
    /// <param name="amsgradAdvice">Appended to the AMSGrad rejection (what to do instead).</param>
    private protected AdamOptimizerBase(string name, double lr, bool biasCorrection, double beta1, double beta2, double eps,
        bool adamWMode, double weightDecay, bool amsgrad, string amsgradAdvice)
    {
        Name = name;
        if (amsgrad)
            throw new ArgumentException(
                $"{name} does not support the AMSGrad variant (optimizer.params.amsgrad = true). Set amsgrad to false{amsgradAdvice}.",
                nameof(amsgrad));
        var defaults = new Options
        {
            LearningRate = lr, InitialLearningRate = lr, beta1 = beta1, beta2 = beta2, eps = eps,
            weight_decay = weightDecay, bias_correction = biasCorrection,
        };
        Validate(defaults, "defaults");
        AdamWMode = adamWMode;
        _defaults = defaults;
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup>();
    }

    /// <summary>The optimizer's name, as used in its error messages.</summary>
    protected string Name { get; }

    /// <summary>True when weight decay is decoupled (AdamW; DeepSpeed <c>adam_w_mode</c> / <c>adamw_mode</c>); false for L2 (Adam).</summary>
    public bool AdamWMode { get; }

    /// <summary>The default (β1, β2) applied to groups added later.</summary>
    public (double, double) Betas
    {
        get => (((Options)_defaults).beta1!.Value, ((Options)_defaults).beta2!.Value);
        set { ((Options)_defaults).beta1 = value.Item1; ((Options)_defaults).beta2 = value.Item2; }
    }

    /// <summary>True when the moments of bf16/fp16 parameters are kept in the parameter's dtype instead of fp32
    /// (DeepSpeed's <c>bf16_optimizer_states</c>; set by the derived constructor before groups are added).</summary>
    public bool LowPrecisionStates { get; private protected set; }

    /// <summary>The number of optimizer steps applied to <paramref name="parameter"/> (0 before its first step).</summary>
    public long StepCount(Parameter parameter) => GetState(parameter).step;

    /// <summary>The first moment (exp_avg) of <paramref name="parameter"/>; owned by the optimizer, do not dispose.</summary>
    public Tensor ExpAvg(Parameter parameter) => GetState(parameter).exp_avg;

    /// <summary>The second moment (exp_avg_sq) of <paramref name="parameter"/>; owned by the optimizer, do not dispose.</summary>
    public Tensor ExpAvgSq(Parameter parameter) => GetState(parameter).exp_avg_sq;

    /// <summary>Adds a parameter group; its unset options take the optimizer's defaults. Moments are allocated now
    /// (fp32 for bf16/fp16 parameters, otherwise the parameter's dtype).</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        ArgumentNullException.ThrowIfNull(param_group);
        if (param_group is not ParamGroup group)
            throw new ArgumentException(
                $"{Name} needs parameter groups of type {typeof(ParamGroup).FullName}, got {param_group.GetType().FullName}.",
                nameof(param_group));
        var def = (Options)_defaults;
        group.Options ??= new Options();
        var o = group.Options;
        o.LearningRate ??= def.LearningRate;
        o.beta1 ??= def.beta1;
        o.beta2 ??= def.beta2;
        o.eps ??= def.eps;
        o.weight_decay ??= def.weight_decay;
        o.bias_correction ??= def.bias_correction;
        o.InitialLearningRate = o.LearningRate!.Value;
        var where = $"param group {_parameter_groups.Count}";
        Validate(o, where);

        var parameters = group.Parameters?.ToList()
            ?? throw new ArgumentException($"{Name} {where} has no Parameters.", nameof(param_group));
        for (var i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (_state.ContainsKey(p.Handle) || parameters.Take(i).Any(q => q.Handle == p.Handle))
                throw new ArgumentException($"{Name}: some parameters appear in more than one parameter group.", nameof(param_group));
            CheckParameter(p, i, where);
        }
        group.Parameters = parameters;
        _parameter_groups.Add(group);
        foreach (var p in parameters)
        {
            var state = new State(p) { InParameterDType = LowPrecisionStates };
            state.Initialize(o);
            _state[p.Handle] = state;
            _groupOf[p.Handle] = group;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> (naming <paramref name="where"/> and <paramref name="index"/>) when
    /// this optimizer cannot update <paramref name="parameter"/>.</summary>
    /// <param name="parameter">A parameter of the group being added.</param>
    /// <param name="index">Its index in the group.</param>
    /// <param name="where">The group, e.g. "param group 1".</param>
    protected abstract void CheckParameter(Parameter parameter, int index, string where);

    /// <summary>Adds each group in turn (see <see cref="add_param_group"/>).</summary>
    private protected void AddParamGroups(IEnumerable<ParamGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        foreach (var group in groups) add_param_group(group);
    }

    /// <summary>The state of a parameter this optimizer manages.</summary>
    private protected State GetState(Parameter p) =>
        _state.TryGetValue(p.Handle, out var s) ? (State)s
            : throw new ArgumentException($"{Name}: the parameter is not managed by this optimizer.", nameof(p));

    /// <summary>The group of a parameter this optimizer manages.</summary>
    private protected ParamGroup GroupOf(Parameter p) =>
        _groupOf.TryGetValue(p.Handle, out var g) ? g
            : throw new ArgumentException($"{Name}: the parameter is not managed by this optimizer.", nameof(p));

    /// <summary>Disposes the optimizer and its moment tensors.</summary>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var kv in _state) ((State)kv.Item2).Dispose();
    }

    private void Validate(Options o, string where)
    {
        var args = new AdamStepArgs(o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value, 1);
        if (args.Problem() is { } problem) throw new ArgumentException($"{Name} {where}: {problem}");
    }
}
