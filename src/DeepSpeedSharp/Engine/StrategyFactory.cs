using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.DataParallel;
using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Precision;
using DeepSpeedSharp.Zero;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>Picks the training strategy for <c>zero_optimization.stage</c>.</summary>
internal static class StrategyFactory
{
    public static ITrainingStrategy Create(nn.Module model, DeepSpeedConfig config, IReadOnlyList<(string Name, Parameter Param)> parameters,
        ClientOptimizer? client, Func<IEnumerable<Parameter>, optim.Optimizer> factory, ProcessGroup group, PrecisionPolicy precision,
        IReadOnlyDictionary<string, ZeroInit.PrePartitioned> prePartitioned, ModelParallelGradients modelParallel, ParallelLayout? layout = null)
    {
        int stage = config.ZeroOptimization.Stage;
        if (parameters.Count == 0) throw new ArgumentException("the model has no trainable parameters (every parameter has requires_grad = false)");
        if (prePartitioned.Count > 0 && stage != 3)
            throw new DeepSpeedConfigException($"the model was built with ZeroInit (already partitioned), which needs zero_optimization.stage 3; the config has stage {stage}");
        // fp32 stage 0 steps the model's own parameters (a user's optimizer instance works as it is); everything else
        // keeps fp32 master weights, and a user's optimizer is carried over to them group by group.
        if (!KeepsMasters(config, precision))
        {
            var optimizer = factory(parameters.Select(p => p.Param));
            return new DataParallelStrategy(model, parameters.Select(p => p.Param).ToList(), optimizer, group, config, modelParallel);
        }
        int[]? groupSizes = null;
        if (client != null)
        {
            (parameters, groupSizes) = client.Order(parameters);
            factory = ps => client.Rebuild(ps.ToList());
        }
        var masterDevice = Offload.MasterDevice(config);
        ITrainingStrategy strategy = stage == 3
            ? new Zero3Strategy(model, parameters, factory, group, config, prePartitioned, masterDevice, modelParallel: modelParallel,
                masterDType: precision.MasterDType, layout: layout, groupSizes: groupSizes)
            : new ZeroStage12Strategy(model, parameters, factory, group, config, precision.Fp32GradAccumulation, masterDevice, modelParallel,
                precision.MasterDType, groupSizes);
        if (stage > 0) OptimizerChoice.CheckZeroSupported(config, strategy.Optimizer);
        Offload.CheckOptimizer(config, strategy.Optimizer, precision.MasterDType);
        return strategy;
    }

    /// <summary>True when the strategy keeps master weights of its own (any ZeRO stage, or 16-bit training), so that a
    /// user's optimizer built over the model's parameters is carried over to them.</summary>
    public static bool KeepsMasters(DeepSpeedConfig config, PrecisionPolicy precision) =>
        config.ZeroOptimization.Stage > 0 || precision.IsReducedPrecision;
}
