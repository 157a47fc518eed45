using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.DataParallel;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// ZeRO stages 1 and 2. The trainable parameters become views of one flat buffer (padded to a multiple of the
/// data-parallel size); rank r owns partition r of it, with an fp32 master copy and the optimizer state for that
/// partition only. Gradients are reduce-scattered bucket by bucket (<c>reduce_bucket_size</c>) so each rank receives
/// the averaged gradient of its partition: stage 1 at the accumulation boundary, stage 2 after every micro-step,
/// after which the full gradients are released (only the partition gradient is kept between steps). After the
/// optimizer step the updated partitions are all-gathered into the flat buffer (<c>allgather_bucket_size</c>).
/// </summary>
internal sealed partial class ZeroStage12Strategy : ITrainingStrategy
{
    private readonly ProcessGroup group;
    private readonly int stage;
    private readonly FlatLayout layout;
    private readonly Tensor flatParams;
    private readonly Parameter master;
    private readonly Tensor gradPartition;
    private readonly GradientBuckets buckets;
    private readonly GradientScaling scaling;
    private readonly long allgatherBucket;
    private readonly bool ignoreUnused;
    private readonly string[] names;
    private readonly Tensor scratch;

    public ZeroStage12Strategy(IReadOnlyList<(string Name, Parameter Param)> parameters,
        Func<IEnumerable<Parameter>, optim.Optimizer> optimizerFactory, ProcessGroup group, DeepSpeedConfig config)
    {
        this.group = group;
        stage = config.ZeroOptimization.Stage;
        names = parameters.Select(p => p.Name).ToArray();
        var ps = parameters.Select(p => p.Param).ToList();
        if (ps.Count == 0) throw new ArgumentException("ZeRO needs at least one trainable parameter");
        if (ps.Any(p => p.dtype != ps[0].dtype || p.device.ToString() != ps[0].device.ToString()))
            throw new ArgumentException("ZeRO stages 1–2 need every trainable parameter on one device with one dtype; " +
                $"found {string.Join(", ", ps.Select(p => $"{p.dtype}@{p.device}").Distinct())}");
        layout = new FlatLayout(ps, group.Size);
        scaling = GradientScaling.From(config, group.Size);
        allgatherBucket = Math.Max(1, config.ZeroOptimization.AllgatherBucketSize);
        ignoreUnused = config.ZeroOptimization.IgnoreUnusedParameters;
        var device = ps[0].device;

        ParameterSync.Broadcast(ps, group, group.GetGlobalRank(0));
        flatParams = zeros(layout.Padded, ps[0].dtype, device).DetachFromDisposeScope();
        using (no_grad())
        {
            for (int i = 0; i < ps.Count; i++)
            {
                var view = flatParams.narrow(0, layout.Offsets[i], layout.Numels[i]).view(ps[i].shape);
                view.copy_(ps[i]);
                ps[i].set_(view);
            }
        }
        long myStart = layout.PartitionStart(group.Rank);
        using (no_grad())
            master = new Parameter(flatParams.narrow(0, myStart, layout.PartitionSize).to(ScalarType.Float32, copy: true).DetachFromDisposeScope(), requires_grad: true);
        gradPartition = zeros(layout.PartitionSize, ScalarType.Float32, device).DetachFromDisposeScope();
        master.grad = gradPartition;
        buckets = new GradientBuckets(layout, config.ZeroOptimization.ReduceBucketSize,
            CommunicationType.Resolve(config, ScalarType.Float32), device);
        scratch = empty(Math.Max(1, Math.Min(buckets.BucketElements, layout.PartitionSize)), buckets.BucketType, device).DetachFromDisposeScope();
        Optimizer = optimizerFactory(new[] { master });
    }

    public optim.Optimizer Optimizer { get; }

    /// <summary>The flat parameter layout (for checkpoints and reports).</summary>
    public FlatLayout Layout => layout;

    public void AfterBackward(bool isBoundary)
    {
        if (stage == 1 && !isBoundary) return; // stage 1 accumulates full gradients locally until the boundary
        CheckUnused();
        long myStart = layout.PartitionStart(group.Rank);
        foreach (var (start, end) in buckets.Ranges())
        {
            var view = buckets.Pack(start, end);
            if (scaling.Before != 1.0) view.mul_(scaling.Before);
            var counts = layout.CountsPerRank(start, end);
            long mine = counts[group.Rank];
            long offsetInPartition = Math.Max(start, myStart) - myStart;
            if (group.Size == 1)
            {
                Accumulate(view, offsetInPartition, stage == 2);
                continue;
            }
            var output = Scratch(mine);
            group.ReduceScatter(output, view, counts, ReduceOp.Sum);
            Accumulate(output, offsetInPartition, stage == 2);
        }
        // Full gradients are no longer needed: stage 2 releases them every micro-step, stage 1 at the boundary.
        foreach (var p in layout.Parameters) p.grad = null;
    }

    private void Accumulate(Tensor reduced, long offset, bool add)
    {
        if (reduced.numel() == 0) return;
        using var target = gradPartition.narrow(0, offset, reduced.numel());
        using var scaled = scaling.After != 1.0 ? reduced.mul(scaling.After) : reduced.alias();
        if (add) target.add_(scaled);
        else target.copy_(scaled);
    }

    /// <summary>This rank's share of one bucket: at most min(bucket, partition) elements, allocated once.</summary>
    private Tensor Scratch(long n) => scratch.narrow(0, 0, n);

    private void CheckUnused()
    {
        if (ignoreUnused) return;
        for (int i = 0; i < layout.Parameters.Count; i++)
            if (layout.Parameters[i].grad is null)
                throw new InvalidOperationException($"parameter '{names[i]}' received no gradient; set zero_optimization.ignore_unused_parameters to true to allow unused parameters");
    }

    public (double Norm, bool Applied) Step(double clip)
    {
        double norm = GlobalNorm();
        if (!double.IsFinite(norm)) return (norm, false);
        if (clip > 0) GradientClipping.ClipByGlobalNorm(new[] { gradPartition }, clip, norm);
        Optimizer.step();
        Publish();
        return (norm, true);
    }

    /// <summary>The L2 norm of the whole (averaged) gradient: partition sums of squares added across ranks.</summary>
    private double GlobalNorm()
    {
        using var scope = NewDisposeScope();
        var sq = gradPartition.to(ScalarType.Float64).square().sum().reshape(1);
        if (group.Size > 1) group.AllReduce(sq, ReduceOp.Sum);
        return Math.Sqrt(sq.item<double>());
    }

    /// <summary>Writes the updated master partitions of every rank into the flat parameter buffer.</summary>
    private void Publish()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var updated = master.detach().to(flatParams.dtype);
        if (group.Size == 1)
        {
            flatParams.narrow(0, 0, layout.PartitionSize).copy_(updated);
            return;
        }
        long chunk = Math.Max(1, allgatherBucket / group.Size);
        if (chunk >= layout.PartitionSize)
        {
            group.AllGather(flatParams, updated);
            return;
        }
        var gathered = empty(chunk * group.Size, flatParams.dtype, flatParams.device);
        for (long c = 0; c < layout.PartitionSize; c += chunk)
        {
            long n = Math.Min(chunk, layout.PartitionSize - c);
            var outView = gathered.narrow(0, 0, n * group.Size);
            group.AllGather(outView, updated.narrow(0, c, n));
            for (int r = 0; r < group.Size; r++)
                flatParams.narrow(0, layout.PartitionStart(r) + c, n).copy_(outView.narrow(0, r * n, n));
        }
    }

    public void ZeroGrad()
    {
        gradPartition.zero_();
        foreach (var p in layout.Parameters) p.grad = null;
    }

    public ModelStateBytes StateBytes()
    {
        long param = flatParams.numel() * flatParams.element_size() + master.numel() * master.element_size();
        long grad = gradPartition.numel() * gradPartition.element_size()
                    + layout.Parameters.Sum(p => p.grad is null ? 0 : p.grad.numel() * p.grad.element_size());
        return new ModelStateBytes(param, grad, OptimizerStateBytes.Count(Optimizer));
    }

    public void Dispose()
    {
        buckets.Dispose();
        scratch.Dispose();
    }
}
