using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>The optimizer step shared by the strategies that keep fp32 master partitions (ZeRO 1–3, 16-bit stage 0).</summary>
internal static class PartitionedStep
{
    /// <summary>
    /// Global norm of the gradient held as partitions (this rank's fp32 norm, squared and summed across
    /// <paramref name="partitionGroup"/> in fp64; null when this rank holds the whole gradient), then the overflow check,
    /// unscaling and clipping, the optimizer step and <paramref name="publish"/> (make the new values visible).
    /// </summary>
    public static StepResult Run(Tensor gradPartition, ProcessGroup? partitionGroup, Device commDevice, optim.Optimizer optimizer,
        double clip, double lossScale, bool skipOnOverflow, Action publish)
    {
        double norm = GlobalNorm(gradPartition, partitionGroup, commDevice) / lossScale;
        bool overflow = !double.IsFinite(norm);
        if (overflow && skipOnOverflow) return new StepResult(norm, false, true);
        double factor = StepResult.GradientFactor(norm, clip, lossScale);
        if (factor != 1.0) gradPartition.mul_(factor);
        optimizer.step();
        publish();
        return new StepResult(norm, true, overflow);
    }

    private static double GlobalNorm(Tensor gradPartition, ProcessGroup? partitionGroup, Device commDevice)
    {
        using var scope = NewDisposeScope();
        var sq = gradPartition.norm().to(ScalarType.Float64).square().reshape(1).to(commDevice);
        if (partitionGroup is { Size: > 1 }) partitionGroup.AllReduce(sq, ReduceOp.Sum);
        return Math.Sqrt(sq.item<double>());
    }
}
