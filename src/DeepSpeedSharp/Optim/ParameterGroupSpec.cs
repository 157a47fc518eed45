using TorchSharp.Modules;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// An optimizer-independent parameter group for <see cref="OptimizerFactory"/>: the parameters plus the options that
/// differ from the optimizer-wide values (null = use those). The usual case is a no-weight-decay group for biases and
/// norm weights, as in PyTorch's <c>[{"params": ..., "weight_decay": 0.0}, ...]</c>.
/// </summary>
/// <param name="Parameters">The group's parameters.</param>
/// <param name="LearningRate">The group's learning rate, or null for the optimizer's <c>lr</c>.</param>
/// <param name="WeightDecay">The group's weight decay, or null for the optimizer's <c>weight_decay</c>.</param>
public sealed record ParameterGroupSpec(IEnumerable<Parameter> Parameters, double? LearningRate = null, double? WeightDecay = null);
