using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>The optimizer step shared by the strategies that keep fp32 master partitions (ZeRO 1–3, 16-bit stage 0).</summary>
internal static class PartitionedStep
{
    /// <summary>
    /// Global norm of the gradient held as partitions (<paramref name="localSquares"/>, this rank's sum of squares of the
    /// elements that count, summed across <paramref name="partitionGroup"/> — null when this rank holds the whole
    /// gradient — and across the model-parallel group in fp64), then the overflow check, unscaling and clipping, the
    /// optimizer step and <paramref name="publish"/> (make the new values visible).
    /// </summary>
    public static StepResult Run(Tensor gradPartition, double localSquares, ModelParallelGradients modelParallel, ProcessGroup? partitionGroup, Device commDevice,
        optim.Optimizer optimizer, double clip, double lossScale, bool skipOnOverflow, Action publish)
    {
        double norm = modelParallel.Finish(localSquares, partitionGroup, commDevice) / lossScale;
        bool overflow = !double.IsFinite(norm);
        if (overflow && skipOnOverflow) return new StepResult(norm, false, true);
        double factor = StepResult.GradientFactor(norm, clip, lossScale);
        if (factor != 1.0) gradPartition.mul_(factor);
        optimizer.step();
        publish();
        return new StepResult(norm, true, overflow);
    }

}
