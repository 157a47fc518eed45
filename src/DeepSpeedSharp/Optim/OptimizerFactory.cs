using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// Builds the optimizer named by DeepSpeed's <c>optimizer.type</c> the way DeepSpeed's engine does
/// (<c>_configure_basic_optimizer</c>).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>"adam"</c> / <c>"adamw"</c> (case-insensitive): the effective mode is AdamW when the type is <c>adamw</c> or
/// <c>adam_w_mode</c> is true (its default), so plain <c>"Adam"</c> is AdamW unless <c>adam_w_mode: false</c>.
/// With <c>torch_adam</c> true this is TorchSharp's <c>optim.AdamW</c> (AdamW mode) or <c>optim.Adam</c> (L2 mode);
/// otherwise <see cref="FusedAdam"/>.</item>
/// <item><c>"sgd"</c>: TorchSharp's <c>optim.SGD</c> with momentum, dampening, weight_decay, nesterov (DeepSpeed
/// looks such names up in <c>torch.optim</c>).</item>
/// </list>
/// </remarks>
public static class OptimizerFactory
{
    /// <summary>The optimizer types this factory builds.</summary>
    public static IReadOnlyList<string> SupportedTypes { get; } = new[] { "adam", "adamw", "sgd" };

    /// <summary>Creates the optimizer for one parameter group.</summary>
    /// <param name="type">DeepSpeed <c>optimizer.type</c>: adam, adamw or sgd (case-insensitive).</param>
    /// <param name="parameters">The parameters to optimize.</param>
    /// <param name="lr"><c>lr</c>.</param>
    /// <param name="beta1"><c>betas[0]</c> (Adam types).</param>
    /// <param name="beta2"><c>betas[1]</c> (Adam types).</param>
    /// <param name="eps"><c>eps</c> (Adam types).</param>
    /// <param name="weightDecay"><c>weight_decay</c>.</param>
    /// <param name="biasCorrection"><c>bias_correction</c> (FusedAdam only; false is rejected with torch_adam).</param>
    /// <param name="amsgrad"><c>amsgrad</c> (rejected by FusedAdam, as in DeepSpeed; supported with torch_adam).</param>
    /// <param name="adamWMode"><c>adam_w_mode</c> (DeepSpeed default true).</param>
    /// <param name="torchAdam"><c>torch_adam</c>: use TorchSharp's Adam/AdamW instead of FusedAdam.</param>
    /// <param name="momentum"><c>momentum</c> (sgd).</param>
    /// <param name="dampening"><c>dampening</c> (sgd).</param>
    /// <param name="nesterov"><c>nesterov</c> (sgd).</param>
    /// <param name="lowPrecisionStates"><c>bf16_optimizer_states</c>: FusedAdam keeps the moments of 16-bit parameters in
    /// their dtype instead of fp32.</param>
    /// <param name="stochasticRounding">FusedAdam rounds updated bf16 parameters stochastically (bf16 master weights).</param>
    /// <param name="noiseSeed">Seed of that rounding noise (one per rank).</param>
    public static torch.optim.Optimizer Create(string type, IEnumerable<Parameter> parameters, double lr, double beta1, double beta2,
        double eps, double weightDecay, bool biasCorrection, bool amsgrad, bool adamWMode, bool torchAdam, double momentum,
        double dampening, bool nesterov, bool lowPrecisionStates = false, bool stochasticRounding = false, long noiseSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return Create(type, new[] { new ParameterGroupSpec(parameters) }, lr, beta1, beta2, eps, weightDecay, biasCorrection,
            amsgrad, adamWMode, torchAdam, momentum, dampening, nesterov, lowPrecisionStates, stochasticRounding, noiseSeed);
    }

    /// <summary>Creates the optimizer for several parameter groups (per-group lr / weight_decay override the
    /// optimizer-wide values).</summary>
    /// <inheritdoc cref="Create(string, IEnumerable{Parameter}, double, double, double, double, double, bool, bool, bool, bool, double, double, bool, bool, bool, long)"/>
    public static torch.optim.Optimizer Create(string type, IEnumerable<ParameterGroupSpec> groups, double lr, double beta1,
        double beta2, double eps, double weightDecay, bool biasCorrection, bool amsgrad, bool adamWMode, bool torchAdam,
        double momentum, double dampening, bool nesterov, bool lowPrecisionStates = false, bool stochasticRounding = false, long noiseSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var specs = groups.ToList();
        var name = (type ?? "").Trim().ToLowerInvariant();
        if (name is not ("adam" or "adamw" or "sgd"))
            throw new ArgumentException(
                $"optimizer.type '{type}' is not supported; expected one of: {string.Join(", ", SupportedTypes)} (case-insensitive).",
                nameof(type));
        if (specs.Count == 0) throw new ArgumentException("the optimizer needs at least one parameter group.", nameof(groups));
        CheckNonNegative("lr", lr);
        CheckNonNegative("weight_decay", weightDecay);
        for (var i = 0; i < specs.Count; i++)
        {
            if (specs[i]?.Parameters is null) throw new ArgumentException($"parameter group {i} has no parameters.", nameof(groups));
            if (specs[i].LearningRate is { } glr) CheckNonNegative($"param group {i} lr", glr);
            if (specs[i].WeightDecay is { } gwd) CheckNonNegative($"param group {i} weight_decay", gwd);
        }
        return name == "sgd"
            ? CreateSgd(specs, lr, weightDecay, momentum, dampening, nesterov)
            : CreateAdam(name, specs, lr, beta1, beta2, eps, weightDecay, biasCorrection, amsgrad, adamWMode, torchAdam, lowPrecisionStates, stochasticRounding, noiseSeed);
    }

    private static torch.optim.Optimizer CreateAdam(string name, List<ParameterGroupSpec> specs, double lr, double beta1,
        double beta2, double eps, double weightDecay, bool biasCorrection, bool amsgrad, bool adamWMode, bool torchAdam,
        bool lowPrecisionStates, bool stochasticRounding, long noiseSeed)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw Bad("betas[0]", beta1, "a number in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw Bad("betas[1]", beta2, "a number in [0, 1)");
        CheckNonNegative("eps", eps);
        // DeepSpeed: "Optimizer name of Adam forces AdamW logic unless adam_w_mode is explicitly set".
        var effectiveAdamW = name == "adamw" || adamWMode;
        if (!torchAdam)
        {
            var groups = specs.Select(s => new FusedAdam.ParamGroup(s.Parameters,
                new FusedAdam.Options { LearningRate = s.LearningRate, weight_decay = s.WeightDecay })).ToList();
            return new FusedAdam(groups, lr, biasCorrection, beta1, beta2, eps, effectiveAdamW, weightDecay, amsgrad, lowPrecisionStates, stochasticRounding, noiseSeed);
        }
        if (!biasCorrection)
            throw new ArgumentException(
                "optimizer.params.bias_correction = false is not supported with torch_adam = true: torch.optim.Adam/AdamW " +
                "always apply bias correction (DeepSpeed passes the key on and torch rejects it). Remove torch_adam to use FusedAdam.",
                nameof(biasCorrection));
        if (effectiveAdamW)
        {
            var groups = specs.Select(s => new AdamW.ParamGroup(s.Parameters,
                new AdamW.Options { LearningRate = s.LearningRate, weight_decay = s.WeightDecay })).ToList();
            return new AdamW(groups, lr, beta1, beta2, eps, weightDecay, amsgrad);
        }
        var adamGroups = specs.Select(s => new Adam.ParamGroup(s.Parameters,
            new Adam.Options { LearningRate = s.LearningRate, weight_decay = s.WeightDecay })).ToList();
        return new Adam(adamGroups, lr, beta1, beta2, eps, weightDecay, amsgrad);
    }

    private static torch.optim.Optimizer CreateSgd(List<ParameterGroupSpec> specs, double lr, double weightDecay, double momentum,
        double dampening, bool nesterov)
    {
        CheckNonNegative("momentum", momentum);
        if (double.IsNaN(dampening) || double.IsInfinity(dampening)) throw Bad("dampening", dampening, "a finite number");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException(
                $"optimizer.params.nesterov = true requires momentum > 0 and dampening = 0, got momentum {Fmt(momentum)} " +
                $"and dampening {Fmt(dampening)}.", nameof(nesterov));
        var groups = specs.Select(s => new SGD.ParamGroup(s.Parameters,
            new SGD.Options { LearningRate = s.LearningRate, weight_decay = s.WeightDecay })).ToList();
        return new SGD(groups, lr, momentum, dampening, weightDecay, nesterov, false);
    }

    private static void CheckNonNegative(string key, double value)
    {
        if (!(value >= 0) || double.IsInfinity(value)) throw Bad(key, value, "a finite number >= 0");
    }

    private static ArgumentException Bad(string key, double value, string expected) =>
        new($"optimizer.params.{key} must be {expected}, got {Fmt(value)}.", key);

    private static string Fmt(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
