using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.DataParallel;
using DeepSpeedSharp.Zero;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>Picks the training strategy for <c>zero_optimization.stage</c>.</summary>
internal static class StrategyFactory
{
    public static ITrainingStrategy Create(nn.Module model, DeepSpeedConfig config, IReadOnlyList<(string Name, Parameter Param)> parameters,
        optim.Optimizer? instance, Func<IEnumerable<Parameter>, optim.Optimizer> factory, ProcessGroup group)
    {
        int stage = config.ZeroOptimization.Stage;
        if (parameters.Count == 0) throw new ArgumentException("the model has no trainable parameters (every parameter has requires_grad = false)");
        switch (stage)
        {
            case 0:
                var optimizer = factory(parameters.Select(p => p.Param));
                return new DataParallelStrategy(parameters.Select(p => p.Param).ToList(), optimizer, group, config);
            case 1 or 2 or 3:
                if (instance != null)
                    throw new ArgumentException(
                        $"ZeRO stage {stage} optimizes this rank's partition of the parameters, so it cannot use an optimizer " +
                        "built over the model's parameters: pass optimizerFactory: ps => <your optimizer>(ps, ...) or put an \"optimizer\" section in the config");
                if (stage == 3) return new Zero3Strategy(model, parameters, factory, group, config);
                var strategy = new ZeroStage12Strategy(parameters, factory, group, config);
                OptimizerChoice.CheckZeroSupported(config, strategy.Optimizer);
                return strategy;
            default:
                throw new DeepSpeedConfigException($"zero_optimization.stage must be 0, 1, 2 or 3; got {stage}");
        }
    }
}
