using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.DataParallel;
using DeepSpeedSharp.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// ZeRO stages 1 and 2 — and stage 0 for bf16/fp16 models, which need fp32 master weights too (then there is one
/// "partition", the whole flat space, and gradients are all-reduced). The trainable parameters become views of one flat buffer (padded to a multiple of the
/// data-parallel size); rank r owns partition r of it, with a master copy (fp32, or 16-bit with
/// <c>bf16_master_weights_and_grads</c>) and the optimizer state for that partition only. Gradients are reduce-scattered bucket by bucket (<c>reduce_bucket_size</c>) so each rank receives
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
    private readonly bool partitioned;
    private readonly int partRank;
    private readonly Tensor? fp32Accum;
    private readonly Device masterDevice;
    private readonly ModelParallelGradients modelParallel;
    private readonly bool loadFromFp32Weights;
    private readonly MasterGroups masterGroups;

    private readonly GradientReadiness? readiness;
    private readonly OverlappedReduction? overlap;
    private readonly Tensor[] slotScratch = Array.Empty<Tensor>();

    public ZeroStage12Strategy(nn.Module model, IReadOnlyList<(string Name, Parameter Param)> parameters,
        Func<IEnumerable<Parameter>, optim.Optimizer> optimizerFactory, ProcessGroup group, DeepSpeedConfig config,
        bool fp32GradAccumulation = false, Device? masterDevice = null, ModelParallelGradients? modelParallel = null,
        ScalarType masterDType = ScalarType.Float32, int[]? groupSizes = null)
    {
        this.group = group;
        this.modelParallel = modelParallel ?? ModelParallelGradients.DataParallelOnly;
        stage = config.ZeroOptimization.Stage;
        loadFromFp32Weights = config.ZeroOptimization.LoadFromFp32Weights;
        partitioned = stage >= 1;
        partRank = partitioned ? group.Rank : 0;
        names = parameters.Select(p => p.Name).ToArray();
        var ps = parameters.Select(p => p.Param).ToList();
        if (ps.Count == 0) throw new ArgumentException("ZeRO needs at least one trainable parameter");
        if (ps.Any(p => p.dtype != ps[0].dtype || p.device.ToString() != ps[0].device.ToString()))
            throw new ArgumentException("ZeRO stages 1–2 need every trainable parameter on one device with one dtype; " +
                $"found {string.Join(", ", ps.Select(p => $"{p.dtype}@{p.device}").Distinct())}");
        layout = new FlatLayout(ps, partitioned ? group.Size : 1);
        scaling = GradientScaling.From(config, group.Size);
        allgatherBucket = Math.Max(1, config.ZeroOptimization.AllgatherBucketSize);
        ignoreUnused = config.ZeroOptimization.IgnoreUnusedParameters;
        var device = ps[0].device;
        this.masterDevice = masterDevice ?? device;

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
        long myStart = layout.PartitionStart(partRank);
        using (no_grad())
            master = new Parameter(Offload.PinIfUseful(flatParams.narrow(0, myStart, layout.PartitionSize)
                .to(masterDType, this.masterDevice, copy: true).DetachFromDisposeScope(), device, config), requires_grad: true);
        gradPartition = Offload.PinIfUseful(zeros(layout.PartitionSize, masterDType, this.masterDevice).DetachFromDisposeScope(), device, config);
        // DeepSpeed's BF16 optimizer: 16-bit gradients are added into fp32 after every micro-step (stages 0-1;
        // stage 2 already reduces into the fp32 partition every micro-step).
        if (fp32GradAccumulation && stage < 2 && ps[0].dtype != ScalarType.Float32)
            fp32Accum = zeros(layout.Padded, ScalarType.Float32, device).DetachFromDisposeScope();
        master.grad = gradPartition;
        buckets = new GradientBuckets(layout, config.ZeroOptimization.ReduceBucketSize,
            CommunicationType.Resolve(config, ScalarType.Float32), device);
        scratch = empty(Math.Max(1, Math.Min(buckets.BucketElements, layout.PartitionSize)), buckets.BucketType, device).DetachFromDisposeScope();
        if (config.ZeroOptimization.OverlapComm && group.Size > 1 && fp32Accum is null)
        {
            slotScratch = new[] { scratch, empty(scratch.numel(), scratch.dtype, device).DetachFromDisposeScope() };
            overlap = new OverlappedReduction(layout, config.ZeroOptimization.ReduceBucketSize, buckets.BucketType, device, poolSize: 2,
                LaunchBucket, CompleteBucket);
            readiness = new GradientReadiness(model, ps, overlap.ParametersReady);
        }
        masterGroups = new MasterGroups(master, gradPartition, MasterGroups.Boundaries(groupSizes, ps.Count, i => layout.Offsets[i],
            layout.PartitionSize, flat => Math.Clamp(flat - myStart, 0, layout.PartitionSize)));
        Optimizer = optimizerFactory(masterGroups.Parameters);
    }

    public optim.Optimizer Optimizer { get; }

    /// <summary>The flat parameter layout (for checkpoints and reports).</summary>
    public FlatLayout Layout => layout;

    public void BeforeForward(bool isBoundary)
    {
        if (stage == 2 || isBoundary) readiness?.Arm();
    }

    public bool DrainsGradientsEveryMicroStep => stage == 2 || fp32Accum is not null;

    public bool ReducesEveryMicroStep => stage == 2;

    public void AfterBackward(bool isBoundary)
    {
        if (fp32Accum is not null) AccumulateLocally();
        if (stage < 2 && !isBoundary) return; // stages 0-1 accumulate locally until the boundary
        if (fp32Accum is null) CheckUnused();
        if (overlap is not null)
        {
            readiness!.FinishPass(); // what the pass did not report yet is ready now
            overlap.Finish();
            foreach (var p in layout.Parameters) p.grad = null;
            return;
        }
        long myStart = layout.PartitionStart(partRank);
        foreach (var (start, end) in buckets.Ranges())
        {
            var view = fp32Accum is not null ? buckets.PackFrom(fp32Accum, start, end) : buckets.Pack(start, end);
            if (scaling.Before != 1.0) view.mul_(scaling.Before);
            long offsetInPartition = Math.Max(start, myStart) - myStart;
            if (!partitioned || group.Size == 1)
            {
                if (group.Size > 1) group.AllReduce(view, ReduceOp.Sum);
                Accumulate(view, offsetInPartition, stage == 2);
                continue;
            }
            var counts = layout.CountsPerRank(start, end);
            var output = Scratch(counts[group.Rank]);
            group.ReduceScatter(output, view, counts, ReduceOp.Sum);
            Accumulate(output, offsetInPartition, stage == 2);
        }
        // Full gradients are no longer needed: stage 2 releases them every micro-step, stages 0-1 at the boundary.
        foreach (var p in layout.Parameters) p.grad = null;
        fp32Accum?.zero_();
    }

    /// <summary>overlap_comm: starts the reduction of a packed bucket (all-reduce at stage 0, reduce-scatter otherwise).</summary>
    private Work LaunchBucket(int slot, Tensor view, long start, long end)
    {
        if (scaling.Before != 1.0) view.mul_(scaling.Before);
        if (!partitioned) return group.AllReduceAsync(view, ReduceOp.Sum);
        var counts = layout.CountsPerRank(start, end);
        return group.ReduceScatterAsync(slotScratch[slot].narrow(0, 0, counts[group.Rank]), view, counts, ReduceOp.Sum);
    }

    /// <summary>overlap_comm: adds a reduced bucket into this rank's partition gradient.</summary>
    private void CompleteBucket(int slot, GradientBuckets bucket, Tensor view, long start, long end)
    {
        long myStart = layout.PartitionStart(partRank);
        long offset = Math.Max(start, myStart) - myStart;
        if (!partitioned) Accumulate(view, offset, stage == 2);
        else Accumulate(slotScratch[slot].narrow(0, 0, layout.CountsPerRank(start, end)[group.Rank]), offset, stage == 2);
    }

    /// <summary>Adds this micro-step's 16-bit gradients into the fp32 accumulation buffer and drops them.</summary>
    private void AccumulateLocally()
    {
        CheckUnused();
        using var noGrad = no_grad();
        for (int i = 0; i < layout.Parameters.Count; i++)
        {
            using var grad = layout.Parameters[i].grad; // disposed: a stray handle would keep the dropped gradient alive
            if (grad is null) continue;
            using var flat = grad.reshape(-1);
            using var target = fp32Accum!.narrow(0, layout.Offsets[i], layout.Numels[i]);
            target.add_(flat);
            layout.Parameters[i].grad = null;
        }
    }

    private void Accumulate(Tensor reduced, long offset, bool add)
    {
        if (reduced.numel() == 0) return;
        using var target = gradPartition.narrow(0, offset, reduced.numel());
        using var scaled = scaling.After != 1.0 ? reduced.mul(scaling.After) : reduced.alias();
        using var moved = scaled.device.ToString() == masterDevice.ToString() ? scaled.alias() : scaled.to(masterDevice);
        if (add) target.add_(moved);
        else target.copy_(moved);
    }

    /// <summary>This rank's share of one bucket: at most min(bucket, partition) elements, allocated once.</summary>
    private Tensor Scratch(long n) => scratch.narrow(0, 0, n);

    private void CheckUnused()
    {
        if (ignoreUnused) return;
        for (int i = 0; i < layout.Parameters.Count; i++)
        {
            if (!Utils.GradientHandles.HasGradient(layout.Parameters[i]))
                throw new InvalidOperationException($"parameter '{names[i]}' received no gradient; set zero_optimization.ignore_unused_parameters to true to allow unused parameters");
        }
    }

    public StepResult Step(double clip, double lossScale, bool skipOnOverflow) =>
        PartitionedStep.Run(gradPartition, modelParallel.PrepareAndSquare(PartitionPieces), modelParallel,
            partitioned ? group : null, flatParams.device, Optimizer, clip, lossScale, skipOnOverflow, Publish);

    /// <summary>This rank's partition gradient, one piece per parameter it overlaps (the same pieces on every tensor rank).</summary>
    private IEnumerable<GradientPiece> PartitionPieces()
    {
        long myStart = layout.PartitionStart(partRank);
        foreach (var (index, _, rangeOffset, count) in layout.Pieces(myStart, Math.Min(layout.Total, myStart + layout.PartitionSize)))
            yield return new GradientPiece(layout.Parameters[index], gradPartition.narrow(0, rangeOffset, count));
    }

    /// <summary>Writes the updated master partitions of every rank into the flat parameter buffer.</summary>
    private void Publish()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var updated = master.detach().to(flatParams.dtype, flatParams.device);
        if (!partitioned || group.Size == 1)
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
        long grad = gradPartition.numel() * gradPartition.element_size() + (fp32Accum is null ? 0 : fp32Accum.numel() * 4)
                    + layout.Parameters.Sum(Utils.GradientHandles.GradientBytes);
        return new ModelStateBytes(param, grad, OptimizerStateBytes.Count(Optimizer));
    }

    public void Dispose()
    {
        readiness?.Dispose();
        overlap?.Dispose();
        foreach (var t in slotScratch.Skip(1)) t.Dispose();
        buckets.Dispose();
        scratch.Dispose();
        fp32Accum?.Dispose();
    }
}
