using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.DataParallel;

/// <summary>
/// ZeRO stage 0 — distributed data parallel. Parameters are broadcast from the group's first rank at start; every
/// rank keeps full gradients and optimizer state; at the accumulation boundary the gradients are averaged across
/// the data-parallel group in buckets of <c>reduce_bucket_size</c> elements (in the <c>communication_data_type</c>),
/// in a fixed order, and every rank takes the same optimizer step. With <c>overlap_comm</c> a bucket's all-reduce starts
/// during backward as soon as its gradients are final. With one rank no communication happens.
/// </summary>
internal sealed partial class DataParallelStrategy : ITrainingStrategy
{
    private readonly ProcessGroup group;
    private readonly FlatLayout layout;
    private readonly GradientBuckets? buckets;
    private readonly GradientScaling scaling;
    private readonly ModelParallelGradients modelParallel;

    private readonly GradientReadiness? readiness;
    private readonly OverlappedReduction? overlap;

    public DataParallelStrategy(nn.Module model, IReadOnlyList<Parameter> parameters, optim.Optimizer optimizer, ProcessGroup group, DeepSpeedConfig config,
        ModelParallelGradients? modelParallel = null)
    {
        this.group = group;
        this.modelParallel = modelParallel ?? ModelParallelGradients.DataParallelOnly;
        Optimizer = optimizer;
        layout = new FlatLayout(parameters, 1);
        scaling = GradientScaling.From(config, group.Size);
        if (group.Size > 1 && layout.Total > 0)
        {
            var device = parameters[0].device;
            var commType = CommunicationType.Resolve(config, parameters[0].dtype);
            buckets = new GradientBuckets(layout, config.ZeroOptimization.ReduceBucketSize, commType, device);
            ParameterSync.Broadcast(parameters, group, group.GetGlobalRank(0));
            if (config.ZeroOptimization.OverlapComm)
            {
                overlap = new OverlappedReduction(layout, config.ZeroOptimization.ReduceBucketSize, commType, device, poolSize: 2,
                    launch: (_, view, _, _) =>
                    {
                        if (scaling.Before != 1.0) view.mul_(scaling.Before);
                        return group.AllReduceAsync(view, ReduceOp.Sum);
                    },
                    complete: (_, bucket, view, start, end) =>
                    {
                        if (scaling.After != 1.0) view.mul_(scaling.After);
                        bucket.Unpack(view, start, end);
                    });
                readiness = new GradientReadiness(model, parameters, overlap.ParametersReady);
            }
        }
    }

    public optim.Optimizer Optimizer { get; }

    public void BeforeForward(bool isBoundary)
    {
        if (isBoundary) readiness?.Arm();
    }

    public void AfterBackward(bool isBoundary)
    {
        if (!isBoundary || buckets == null) return; // no reduction on non-boundary micro-steps
        if (overlap != null)
        {
            readiness!.FinishPass(); // what the pass did not report yet is ready now
            overlap.Finish();
            return;
        }
        foreach (var (start, end) in buckets.Ranges())
        {
            var view = buckets.Pack(start, end);
            if (scaling.Before != 1.0) view.mul_(scaling.Before);
            group.AllReduce(view, ReduceOp.Sum);
            if (scaling.After != 1.0) view.mul_(scaling.After);
            buckets.Unpack(view, start, end);
        }
    }

    public StepResult Step(double clip, double lossScale, bool skipOnOverflow)
    {
        var grads = layout.Parameters.Select(p => p.grad).ToList();
        double squares = modelParallel.PrepareAndSquare(
            () => layout.Parameters.Where(p => p.grad is not null).Select(p => new GradientPiece(p, p.grad!)));
        // Every data-parallel rank holds the whole (averaged) gradient: only the model-parallel ranks are summed.
        double norm = modelParallel.Finish(squares, null, layout.Parameters[0].device) / lossScale;
        bool overflow = !double.IsFinite(norm);
        if (overflow && skipOnOverflow) return new StepResult(norm, false, true);
        double factor = StepResult.GradientFactor(norm, clip, lossScale);
        if (factor != 1.0)
            using (no_grad())
                foreach (var g in grads) g?.mul_(factor);
        Optimizer.step();
        return new StepResult(norm, true, overflow);
    }

    public void ZeroGrad() => Optimizer.zero_grad();

    public ModelStateBytes StateBytes()
    {
        long param = layout.Parameters.Sum(p => p.numel() * p.element_size());
        long grad = layout.Parameters.Sum(p => p.grad is null ? 0 : p.grad.numel() * p.grad.element_size());
        return new ModelStateBytes(param, grad + (buckets?.Bytes ?? 0) + (overlap?.Bytes ?? 0), OptimizerStateBytes.Count(Optimizer));
    }

    public void Dispose()
    {
        readiness?.Dispose();
        overlap?.Dispose();
        buckets?.Dispose();
    }
}
