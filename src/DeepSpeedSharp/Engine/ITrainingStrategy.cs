using TorchSharp;

namespace DeepSpeedSharp.Engine;

/// <summary>Bytes a rank holds in model state between steps.</summary>
/// <param name="Parameters">Model parameters plus any master (fp32) partition.</param>
/// <param name="Gradients">Gradient buffers kept between steps (full or partitioned).</param>
/// <param name="OptimizerState">Optimizer state tensors (moments, momentum buffers).</param>
public sealed record ModelStateBytes(long Parameters, long Gradients, long OptimizerState)
{
    /// <summary>The sum of the three.</summary>
    public long Total => Parameters + Gradients + OptimizerState;
}

/// <summary>
/// How gradients become an update: plain local training, data parallelism (stage 0) or ZeRO partitioning.
/// The engine calls these at fixed points of a step; each implementation lives in its own folder.
/// </summary>
internal interface ITrainingStrategy : IDisposable
{
    /// <summary>The optimizer this strategy steps (over the model's parameters, or over partitions).</summary>
    torch.optim.Optimizer Optimizer { get; }

    /// <summary>Called after every micro-step's backward; <paramref name="isBoundary"/> marks the last one of a step.</summary>
    void AfterBackward(bool isBoundary);

    /// <summary>
    /// At the accumulation boundary: finishes gradient reduction, computes the global gradient norm (the same on
    /// every rank), clips by <paramref name="clip"/> when positive, steps the optimizer unless the norm is not
    /// finite, and makes the updated parameters visible in the model. Returns the norm and whether it stepped.
    /// </summary>
    (double Norm, bool Applied) Step(double clip);

    /// <summary>Clears all gradients.</summary>
    void ZeroGrad();

    /// <summary>Bytes of model state this rank holds between steps.</summary>
    ModelStateBytes StateBytes();
}
