using TorchSharp;

namespace DeepSpeedSharp.Training;

/// <summary>Bytes a rank holds in model state between steps.</summary>
/// <param name="Parameters">Model parameters plus any master (fp32) partition.</param>
/// <param name="Gradients">Gradient buffers kept between steps (full or partitioned).</param>
/// <param name="OptimizerState">Optimizer state tensors (moments, momentum buffers).</param>
public sealed record ModelStateBytes(long Parameters, long Gradients, long OptimizerState)
{
    /// <summary>The sum of the three.</summary>
    public long Total => Parameters + Gradients + OptimizerState;
}

/// <summary>The outcome of an optimizer step.</summary>
/// <param name="Norm">Global L2 norm of the unscaled gradients, before clipping.</param>
/// <param name="Applied">Whether the optimizer updated the parameters.</param>
/// <param name="Overflow">Whether the gradients were not finite.</param>
internal readonly record struct StepResult(double Norm, bool Applied, bool Overflow)
{
    /// <summary>The factor that unscales gradients by the loss scale and clips them to a global norm (DeepSpeed's
    /// max_norm / (norm + 1e-6), applied only when below 1).</summary>
    public static double GradientFactor(double norm, double clip, double lossScale)
    {
        double factor = 1.0 / lossScale;
        if (clip > 0 && double.IsFinite(norm))
        {
            double coefficient = clip / (norm + 1e-6);
            if (coefficient < 1.0) factor *= coefficient;
        }
        return factor;
    }
}

/// <summary>
/// How gradients become an update: plain local training, data parallelism (stage 0) or ZeRO partitioning.
/// The engine calls these at fixed points of a step; each implementation lives in its own folder.
/// </summary>
internal interface ITrainingStrategy : IDisposable
{
    /// <summary>The optimizer this strategy steps (over the model's parameters, or over partitions).</summary>
    torch.optim.Optimizer Optimizer { get; }

    /// <summary>Called before every micro-step's forward through the engine (overlap_comm watches the pass).</summary>
    void BeforeForward(bool isBoundary) { }

    /// <summary>True when <see cref="AfterBackward"/> takes the gradients out of the parameters after every micro-step
    /// (ZeRO-2's reduce-scatter, fp32 gradient accumulation); false when they accumulate in the parameters until the boundary.</summary>
    bool DrainsGradientsEveryMicroStep => false;

    /// <summary>True when <see cref="AfterBackward"/> communicates after every micro-step (ZeRO-2's reduce-scatter).</summary>
    bool ReducesEveryMicroStep => false;

    /// <summary>Called after every micro-step's backward; <paramref name="isBoundary"/> marks the last one of a step.</summary>
    void AfterBackward(bool isBoundary);

    /// <summary>
    /// At the accumulation boundary: computes the global gradient norm (the same on every rank) of the gradients
    /// divided by <paramref name="lossScale"/>; when it is not finite and <paramref name="skipOnOverflow"/>, skips the
    /// step; otherwise unscales, clips to <paramref name="clip"/> when positive, steps the optimizer and makes the
    /// updated parameters visible in the model.
    /// </summary>
    StepResult Step(double clip, double lossScale, bool skipOnOverflow);

    /// <summary>Clears all gradients.</summary>
    void ZeroGrad();

    /// <summary>Bytes of model state this rank holds between steps.</summary>
    ModelStateBytes StateBytes();

    /// <summary>True when the parameters are partitioned across ranks between passes (ZeRO-3): the module holds no
    /// whole values to read.</summary>
    bool PartitionsParameters => false;

    /// <summary>With partitioned parameters: the most bytes gathered at once on this rank so far; null otherwise.</summary>
    long? PeakGatheredParameterBytes => null;

    /// <summary>Why whole weights cannot be gathered for a model save (ZeRO-3 with
    /// <c>stage3_gather_16bit_weights_on_model_save</c> false), or null when they can.</summary>
    string? WholeWeightsRefusal => null;

    /// <summary>Visits the whole value of every parameter the strategy partitions, one at a time, under its module name
    /// (nothing when the module holds whole parameters).</summary>
    void ForEachWholeParameter(Action<string, torch.Tensor> visit) { }
}
