using TorchSharp;

namespace DeepSpeedSharp.Schedulers;

/// <summary>
/// DeepSpeed's <c>LRRangeTest</c>: grows the learning rate from <c>lr_range_test_min_lr</c> at a constant rate, to find
/// the largest rate that still trains.
/// </summary>
/// <remarks>
/// At iteration i: interval = (i + 1) / step_size (floored when <c>lr_range_test_staircase</c>), and
/// lr = min_lr · (1 + step_rate · interval). A fresh schedule sets lr = min_lr at construction.
/// </remarks>
public class LRRangeTest : LrScheduler
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="optimizer">The optimizer to drive.</param>
    /// <param name="lrRangeTestMinLr"><c>lr_range_test_min_lr</c> (default 1e-3).</param>
    /// <param name="lrRangeTestStepSize"><c>lr_range_test_step_size</c> (default 2000).</param>
    /// <param name="lrRangeTestStepRate"><c>lr_range_test_step_rate</c> (default 1.0).</param>
    /// <param name="lrRangeTestStaircase"><c>lr_range_test_staircase</c> (default false).</param>
    /// <param name="lastBatchIteration"><c>last_batch_iteration</c> (default −1).</param>
    public LRRangeTest(torch.optim.Optimizer optimizer, double lrRangeTestMinLr = 1e-3, int lrRangeTestStepSize = 2000,
        double lrRangeTestStepRate = 1.0, bool lrRangeTestStaircase = false, int lastBatchIteration = -1)
        : base(optimizer, lastBatchIteration)
    {
        RequireFinite("lr_range_test_min_lr", lrRangeTestMinLr);
        if (lrRangeTestMinLr < 0)
            throw new ArgumentException($"lr_range_test_min_lr must be >= 0, got {lrRangeTestMinLr}.", "lr_range_test_min_lr");
        RequirePositive("lr_range_test_step_size", lrRangeTestStepSize);
        RequireFinite("lr_range_test_step_rate", lrRangeTestStepRate);
        MinLr = lrRangeTestMinLr;
        StepSize = lrRangeTestStepSize;
        StepRate = lrRangeTestStepRate;
        Staircase = lrRangeTestStaircase;
        if (lastBatchIteration == -1) ApplyLr(PerGroup(MinLr));
    }

    /// <summary><c>lr_range_test_min_lr</c>.</summary>
    public double MinLr { get; }
    /// <summary><c>lr_range_test_step_size</c>.</summary>
    public int StepSize { get; }
    /// <summary><c>lr_range_test_step_rate</c>.</summary>
    public double StepRate { get; }
    /// <summary><c>lr_range_test_staircase</c>.</summary>
    public bool Staircase { get; }

    /// <inheritdoc/>
    public override double[] GetLr()
    {
        var interval = Staircase
            ? Math.Floor((double)(LastBatchIteration + 1) / StepSize)
            : (double)(LastBatchIteration + 1) / StepSize;
        return PerGroup(MinLr * (1 + StepRate * interval));
    }
}
