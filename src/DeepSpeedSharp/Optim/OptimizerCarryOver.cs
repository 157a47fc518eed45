using System.Collections;
using System.Reflection;
using DeepSpeedSharp.Optim.CpuAdam;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// Builds an optimizer of a given optimizer's type and hyper-parameters over other parameters, group for group:
/// <see cref="FusedAdam"/> and <see cref="DeepSpeedCpuAdam"/> (with their optimizer-wide settings), and TorchSharp's
/// optimizers that take parameter groups (Adam, AdamW, SGD, RMSProp, Adagrad, Adamax, NAdam, RAdam, Rprop,
/// Adadelta; not ASGD, whose groups constructor this cannot call): each group's options are copied with the options' own <c>LoadStateDict</c>, so every hyper-parameter the
/// optimizer keeps per group travels, whatever its name.
/// </summary>
internal static class OptimizerCarryOver
{
    /// <summary>Null when <paramref name="optimizer"/> can be carried over; otherwise why not.</summary>
    public static string? WhyNot(optim.Optimizer optimizer)
    {
        if (optimizer is FusedAdam or DeepSpeedCpuAdam) return null;
        if (optimizer is not OptimizerHelper)
            return "it is not a TorchSharp OptimizerHelper, so its parameter groups and hyper-parameters cannot be read";
        if (optimizer.GetType().Assembly != typeof(OptimizerHelper).Assembly)
            return "only TorchSharp's own optimizers, FusedAdam and DeepSpeedCpuAdam can be rebuilt from their parameter groups " +
                   "(another type may keep settings outside them)";
        return TorchSharpShape.Of(optimizer.GetType()) is null
            ? "it does not take parameter groups (no constructor over IEnumerable<ParamGroup>)"
            : null;
    }

    /// <summary>The one-line refusal for an optimizer that cannot be carried over.</summary>
    public static ArgumentException Refusal(optim.Optimizer optimizer, string why) =>
        new($"the optimizer passed to DeepSpeed.Initialize ({optimizer.GetType().Name}) cannot be carried over to the parameters the engine " +
            $"optimizes: {why}; pass optimizerFactory: ps => new {optimizer.GetType().Name}(ps, ...) instead, or put an \"optimizer\" section in the config");

    /// <summary>An optimizer like <paramref name="client"/> over <paramref name="perGroup"/>: parameter i takes group i's options.</summary>
    public static optim.Optimizer Rebuild(optim.Optimizer client, IReadOnlyList<Parameter> perGroup)
    {
        if (WhyNot(client) is { } why) throw Refusal(client, why);
        var groups = client.ParamGroups.Cast<ParamGroup>().ToList();
        if (groups.Count != perGroup.Count)
            throw new ArgumentException($"{client.GetType().Name} has {groups.Count} param groups, {perGroup.Count} parameters were given");
        switch (client)
        {
            case FusedAdam f:
                return new FusedAdam(AdamGroups(groups, perGroup), adamWMode: f.AdamWMode, lowPrecisionStates: f.LowPrecisionStates,
                    stochasticRounding: f.StochasticRounding, noiseSeed: f.NoiseSeed);
            case DeepSpeedCpuAdam c:
                return new DeepSpeedCpuAdam(AdamGroups(groups, perGroup), adamWMode: c.AdamWMode, fp32OptimizerStates: c.Fp32OptimizerStates,
                    threads: c.Threads);
        }
        var shape = TorchSharpShape.Of(client.GetType())!;
        var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(shape.GroupType))!;
        for (int g = 0; g < groups.Count; g++)
            list.Add(shape.GroupConstructor.Invoke(new object[] { new[] { perGroup[g] }, CopyOptions(groups[g].Options) }));
        var args = new object?[shape.Constructor.GetParameters().Length];
        args[0] = list;
        var ps = shape.Constructor.GetParameters();
        for (int i = 1; i < args.Length; i++) args[i] = ps[i].HasDefaultValue ? ps[i].DefaultValue : groups[0].Options.LearningRate!.Value;
        return (optim.Optimizer)shape.Constructor.Invoke(args);
    }

    private static List<AdamOptimizerBase.ParamGroup> AdamGroups(List<ParamGroup> groups, IReadOnlyList<Parameter> perGroup) =>
        groups.Select((g, i) => new AdamOptimizerBase.ParamGroup(new[] { perGroup[i] }, (AdamOptimizerBase.Options)CopyOptions(g.Options))).ToList();

    /// <summary>A copy of a group's options (the options' own LoadStateDict copies every field it keeps).</summary>
    private static OptimizerOptions CopyOptions(OptimizerOptions options)
    {
        var copy = (OptimizerOptions)Activator.CreateInstance(options.GetType())!;
        copy.LoadStateDict(options);
        return copy;
    }

    /// <summary>How a TorchSharp optimizer type is built from parameter groups: its nested ParamGroup type, that type's
    /// (parameters, options) constructor, and the optimizer's constructor over groups (other arguments defaulted; a required learning rate is group 0's).</summary>
    private sealed record TorchSharpShape(Type GroupType, ConstructorInfo GroupConstructor, ConstructorInfo Constructor)
    {
        public static TorchSharpShape? Of(Type optimizerType)
        {
            var groupType = optimizerType.GetNestedType("ParamGroup", BindingFlags.Public);
            if (groupType is null || !typeof(ParamGroup).IsAssignableFrom(groupType)) return null;
            var groupCtor = groupType.GetConstructors().FirstOrDefault(c => c.GetParameters() is { Length: 2 } ps &&
                ps[0].ParameterType == typeof(IEnumerable<Parameter>) && typeof(OptimizerOptions).IsAssignableFrom(ps[1].ParameterType));
            var ctor = optimizerType.GetConstructors().FirstOrDefault(c => c.GetParameters() is { Length: > 0 } ps &&
                ps[0].ParameterType == typeof(IEnumerable<>).MakeGenericType(groupType) && ps.Skip(1).All(p => p.HasDefaultValue || IsLearningRate(p)));
            return groupCtor is null || ctor is null ? null : new TorchSharpShape(groupType, groupCtor, ctor);
        }

        /// <summary>A learning-rate argument without a default (SGD's): the optimizer-wide default, which every group overrides.</summary>
        private static bool IsLearningRate(ParameterInfo p) =>
            p.ParameterType == typeof(double) && p.Name is { } n && (n == "lr" || n.Equals("learningRate", StringComparison.OrdinalIgnoreCase));
    }
}
