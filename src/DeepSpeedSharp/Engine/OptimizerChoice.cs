using DeepSpeedSharp.Config;
using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Schedulers;
using DeepSpeedSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>Decides where the optimizer comes from (argument, factory or config), with DeepSpeed's rules.</summary>
internal static class OptimizerChoice
{
    /// <summary>What an error about a missing optimizer tells the user to do.</summary>
    public const string HowToGiveOne = "add an \"optimizer\" section to the config (e.g. {\"type\": \"AdamW\", \"params\": {\"lr\": 0.0001}}) " +
                                       "or pass optimizer: optim.AdamW(model.parameters(), ...) to DeepSpeed.Initialize";

    /// <summary>
    /// A factory building the optimizer over the parameters it is given, or null for an engine without optimizer.
    /// Exactly one source may be given.
    /// </summary>
    public static Func<IEnumerable<Parameter>, optim.Optimizer>? Resolve(DeepSpeedConfig config, optim.Optimizer? instance,
        Func<IEnumerable<Parameter>, optim.Optimizer>? factory)
    {
        int sources = (instance != null ? 1 : 0) + (factory != null ? 1 : 0) + (config.Optimizer != null ? 1 : 0);
        if (sources > 1)
            throw new ArgumentException("the optimizer is given more than once (an optimizer argument, an optimizerFactory, or the config's \"optimizer\" section): keep one");
        if (instance != null) return _ => instance;
        if (factory != null) return factory;
        if (config.Optimizer != null) return ps => EngineOptimizers.CreateOptimizer(config, ps.ToList())!;
        return null;
    }

    /// <summary>
    /// DeepSpeed's <c>zero_allow_untested_optimizer</c> rule: with ZeRO, optimizers other than Adam/AdamW (ours or
    /// TorchSharp's) need the flag.
    /// </summary>
    public static void CheckZeroSupported(DeepSpeedConfig config, optim.Optimizer optimizer)
    {
        if (config.ZeroOptimization.Stage == 0 || config.ZeroAllowUntestedOptimizer) return;
        if (optimizer is FusedAdam or TorchSharp.Modules.Adam or TorchSharp.Modules.AdamW) return;
        if (optimizer.GetType().Name.Contains("Adam", StringComparison.Ordinal) && optimizer.GetType().Namespace?.StartsWith("DeepSpeedSharp", StringComparison.Ordinal) == true) return;
        throw new DeepSpeedConfigException(
            $"You are using an untested ZeRO optimizer ({optimizer.GetType().Name}). Add \"zero_allow_untested_optimizer\": true to the config to use it anyway.");
    }
}

/// <summary>Decides where the LR scheduler comes from (argument, factory or config).</summary>
internal static class SchedulerChoice
{
    /// <summary>The scheduler; one built over <paramref name="client"/> (the user's optimizer the engine carried over to
    /// its own) drives the engine's optimizer from now on, as DeepSpeed's client scheduler does.</summary>
    public static LrScheduler? Resolve(DeepSpeedConfig config, optim.Optimizer? optimizer, LrScheduler? instance, Func<optim.Optimizer, LrScheduler>? factory,
        optim.Optimizer? client = null)
    {
        int sources = (instance != null ? 1 : 0) + (factory != null ? 1 : 0) + (config.Scheduler != null ? 1 : 0);
        if (sources > 1)
            throw new ArgumentException("the LR scheduler is given more than once (an lrScheduler argument, an lrSchedulerFactory, or the config's \"scheduler\" section): keep one");
        if (instance != null)
        {
            if (optimizer != null && client != null && ReferenceEquals(instance.Optimizer, client)) instance.Drive(optimizer);
            if (optimizer != null && !ReferenceEquals(instance.Optimizer, optimizer))
                throw new ArgumentException("the lrScheduler passed in drives a different optimizer than the one passed to DeepSpeed.Initialize: build it over that optimizer, or pass an lrSchedulerFactory");
            return instance;
        }
        if (factory == null && config.Scheduler == null) return null;
        if (optimizer == null) throw new DeepSpeedConfigException("a scheduler was given but there is no optimizer for it to drive: " + OptimizerChoice.HowToGiveOne);
        var scheduler = factory != null ? factory(optimizer) : EngineOptimizers.CreateScheduler(config.Scheduler!, optimizer);
        foreach (var w in scheduler.Warnings) Log.Warn(w);
        return scheduler;
    }
}
