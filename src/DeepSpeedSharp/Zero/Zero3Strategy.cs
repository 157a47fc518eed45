using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.DataParallel;
using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Utils;
using DeepSpeedSharp.Zero.ZeroPlusPlus;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// ZeRO stage 3: every parameter larger than <c>stage3_param_persistence_threshold</c> is partitioned across the
/// data-parallel group (rank r keeps [r·P, (r+1)·P) of its flat value, in an fp32 master buffer that the optimizer
/// updates), gathered just before the module that owns it runs (forward and, by recomputation, backward) and released
/// right after. Gradients are reduce-scattered to their owners in <c>reduce_bucket_size</c> buckets during every
/// micro-step's backward (<see cref="Zero3UnitReducer"/>), so between steps each rank
/// holds 1/N of the parameters, gradients and optimizer state (plus persistent parameters).
/// </summary>
/// <remarks>
/// TorchSharp's <c>set_</c> bumps a tensor's version, so a parameter released after forward cannot be restored for
/// the saved graph. Units (the modules owning parameters) therefore run forward without a graph. A unit that is a
/// Linear gets a backward node that saves its input and computes the gradients from the re-gathered weight
/// (<see cref="Zero3LinearFunction"/>); any other unit is recomputed in backward (<see cref="Zero3RecomputeFunction"/>),
/// exact at the cost of one extra forward of that module. Both give bit-identical gradients; the environment variable
/// <c>DSS_ZERO3_RECOMPUTE_ALL=1</c> recomputes every unit (for comparison). When the limits keep every unit gathered
/// until backward ends and one reduce bucket holds all gradients, units run with autograd's own graph instead
/// (<see cref="Zero3Prefetcher.KeepsGraph"/>). Parameters must be used through their owning module's <c>call</c>.
/// </remarks>
internal sealed partial class Zero3Strategy : ITrainingStrategy
{
    private readonly ProcessGroup group;
    private readonly List<Zero3Parameter> parameters = new();
    private readonly List<Zero3Unit> units = new();
    private readonly Tensor master;
    private readonly Parameter masterParam;
    private readonly Tensor gradPartition;
    private readonly Device device;
    private readonly Zero3UnitReducer unitReducer;
    private readonly GradientScaling scaling;
    private readonly Zero3Prefetcher prefetcher;
    private readonly ModelParallelGradients modelParallel;
    private readonly bool loadFromFp32Weights;
    private readonly ZeroPlusPlusGroups zeroPlusPlus;
    private readonly MasterGroups masterGroups;

    public Zero3Strategy(nn.Module model, IReadOnlyList<(string Name, Parameter Param)> trainable,
        Func<IEnumerable<Parameter>, optim.Optimizer> optimizerFactory, ProcessGroup group, DeepSpeedConfig config,
        IReadOnlyDictionary<string, ZeroInit.PrePartitioned> prePartitioned, Device? masterDevice = null, bool? recomputeAll = null, ModelParallelGradients? modelParallel = null,
        ScalarType masterDType = ScalarType.Float32, ParallelLayout? layout = null, int[]? groupSizes = null)
    {
        this.group = group;
        this.modelParallel = modelParallel ?? ModelParallelGradients.DataParallelOnly;
        var zero = config.ZeroOptimization;
        RecomputeAll = recomputeAll ?? !zero.Stage3LinearFastPath;
        loadFromFp32Weights = zero.LoadFromFp32Weights;
        scaling = GradientScaling.From(config, group.Size);
        var ps = trainable.Select(t => t.Param).ToList();
        var device = ps[0].device;
        ZeroInit.PrePartitioned? Pre(string name) => prePartitioned.TryGetValue(name, out var value) ? value : null;
        ParameterSync.Broadcast(trainable.Where(t => Pre(t.Name) is null).Select(t => t.Param).ToList(), group, group.GetGlobalRank(0));

        zeroPlusPlus = ZeroPlusPlusGroups.Create(zero, group, layout);
        var unpartitionable = UnitDiscovery.UnhookableOwners(model, trainable);
        foreach (var name in unpartitionable)
            Log.Warn($"ZeRO-3: '{name}' owns parameters but is not an nn.Module<Tensor, Tensor>, so its parameters stay whole on every rank");
        long offset = 0, persistentTotal = 0;
        foreach (var (name, p) in trainable)
        {
            long numel = Pre(name)?.Numel ?? p.numel();
            // DeepSpeed's mark_persistent_parameters: small parameters stay whole while the total kept whole stays within
            // stage3_model_persistence_threshold; parameters of modules ZeRO-3 cannot hook always stay whole.
            bool small = numel <= zero.Stage3ParamPersistenceThreshold && persistentTotal + numel <= zero.Stage3ModelPersistenceThreshold;
            if (small) persistentTotal += numel;
            bool persistent = small || unpartitionable.Any(u => name.StartsWith(u + ".", StringComparison.Ordinal) || u.Length == 0);
            var zp = new Zero3Parameter(name, p, group, offset, persistent, Pre(name), zeroPlusPlus);
            parameters.Add(zp);
            offset += zp.PartitionSize;
        }
        var initial = Offload.PinIfUseful(zeros(Math.Max(1, offset), masterDType, masterDevice ?? device).DetachFromDisposeScope(), device, config);
        foreach (var zp in parameters)
        {
            zp.CopyOwnPartitionTo(initial);
            zp.DropOriginal();
        }
        // The Parameter takes over the tensor's handle: from here on the master buffer is the Parameter itself.
        using (no_grad()) masterParam = new Parameter(initial, requires_grad: true);
        master = masterParam;
        foreach (var zp in parameters.Where(z => z.Persistent)) zp.Gather(master);
        gradPartition = zeros_like(master).DetachFromDisposeScope();
        masterParam.grad = gradPartition;
        this.device = device;
        Trigger = zeros(1, requires_grad: true).DetachFromDisposeScope();

        var byHandle = parameters.ToDictionary(z => z.Param.Handle);
        foreach (var (name, module, owned) in UnitDiscovery.Units(model, byHandle))
            if (owned.Any(z => !z.Persistent)) units.Add(new Zero3Unit(name, module, owned, this, units.Count));
        int fast = units.Count(u => u.HasLinearFastPath);
        if (units.Count == 0)
            Log.Warn($"ZeRO-3: nothing is partitioned: all {parameters.Count} parameters stay whole on every rank, as each is at most " +
                     $"stage3_param_persistence_threshold ({zero.Stage3ParamPersistenceThreshold} elements)" +
                     (zero.Stage3ModelPersistenceThreshold == long.MaxValue ? "" : $" within stage3_model_persistence_threshold ({zero.Stage3ModelPersistenceThreshold})") +
                     " or belongs to a module ZeRO-3 cannot hook; lower the threshold (e.g. 0) to partition them");
        Log.Info($"ZeRO-3: {units.Count} units; {fast} Linear units skip recomputation in backward, {units.Count - fast} are recomputed" +
                 (RecomputeAll ? " (zero_optimization.stage3_linear_fast_path is false)" : ""));
        unitReducer = new Zero3UnitReducer(group, units.Select(u => u.Parameters).Concat(parameters.Select(z => new[] { z })), offset,
            zero.ReduceBucketSize, gradPartition, scaling, device, zeroPlusPlus.Gradients);
        prefetcher = new Zero3Prefetcher(zero.Stage3PrefetchBucketSize, zero.Stage3MaxLiveParameters, zero.Stage3MaxReuseDistance,
            oneGradientBucket: unitReducer.HoldsAllGradients);
        masterGroups = new MasterGroups(masterParam, gradPartition,
            MasterGroups.Boundaries(groupSizes, parameters.Count, i => parameters[i].MasterOffset, master.numel()));
        Optimizer = optimizerFactory(masterGroups.Parameters);
        Gather16BitWeightsOnSave = zero.Stage3Gather16BitWeightsOnModelSave;
        RegisterOwnership();
    }

    public optim.Optimizer Optimizer { get; }

    /// <summary>True when every unit is recomputed in backward, Linear units included.</summary>
    internal bool RecomputeAll { get; }

    /// <summary>The units (modules whose parameters are gathered and released together), in module order.</summary>
    internal IReadOnlyList<Zero3Unit> Units => units;

    /// <summary>A scalar requiring grad that every unit's recompute node takes as input (see <see cref="Zero3RecomputeFunction"/>).</summary>
    internal Tensor Trigger { get; }

    /// <summary>The partitioned parameters, in module order.</summary>
    internal IReadOnlyList<Zero3Parameter> Parameters => parameters;

    /// <summary>True when units run with autograd's own graph (see <see cref="Zero3Prefetcher.KeepsGraph"/>).</summary>
    internal bool KeepsGraph => prefetcher.KeepsGraph;

    /// <summary>Largest number of parameter bytes gathered at once (non-persistent parameters) since the last reset.</summary>
    public long PeakGatheredBytes => prefetcher.PeakLiveBytes;

    /// <inheritdoc/>
    public bool PartitionsParameters => true;

    /// <inheritdoc/>
    public long? PeakGatheredParameterBytes => PeakGatheredBytes;

    /// <inheritdoc/>
    public string? WholeWeightsRefusal => Gather16BitWeightsOnSave ? null
        : "zero_optimization.stage3_gather_16bit_weights_on_model_save is false, so ZeRO-3 would have to gather the whole model; " +
          "set it to true, or save a checkpoint and export it";

    /// <inheritdoc/>
    public void ForEachWholeParameter(Action<string, Tensor> visit) => ForEachFull(visit);

    internal void BeforeUnitForward(Zero3Unit unit) => prefetcher.Fetch(unit, units, master, forward: true);

    internal void AfterUnitForward(Zero3Unit unit) => prefetcher.Done(unit, units, forward: true);

    internal void BeforeUnitBackward(Zero3Unit unit) => prefetcher.Fetch(unit, units, master, forward: false);

    internal void AfterUnitBackward(Zero3Unit unit)
    {
        unitReducer.Reduce(unit.Parameters);
        prefetcher.Done(unit, units, forward: false);
    }

    public void AfterBackward(bool isBoundary)
    {
        // Gradients not yet packed are added to the bucket here: those of parameters used outside any unit (persistent
        // ones) and, when units ran with autograd's graph, all of them; then the last bucket is reduce-scattered.
        foreach (var zp in parameters) unitReducer.Reduce(new[] { zp });
        // Inside a step the last reduce-scatters run on during the next forward; the step's last micro-step waits for all.
        if (isBoundary) unitReducer.Flush();
        else unitReducer.LaunchLast();
        prefetcher.EndOfPass(units);
    }

    public StepResult Step(double clip, double lossScale, bool skipOnOverflow) =>
        PartitionedStep.Run(gradPartition, modelParallel.PrepareAndSquare(OwnPieces), modelParallel, group, device, Optimizer, clip, lossScale, skipOnOverflow, () =>
        {
            foreach (var zp in parameters)
            {
                zp.WeightsChanged();
                if (zp.Persistent) zp.Refresh(master);
                else zp.Release();
            }
        });

    /// <summary>This rank's partition gradient, one piece per parameter (its own range; the same pieces on every tensor rank).</summary>
    private IEnumerable<GradientPiece> OwnPieces() =>
        parameters.Select(zp => new GradientPiece(zp.Param, gradPartition.narrow(0, zp.MasterOffset, zp.PartitionSize)));

    public void ZeroGrad()
    {
        unitReducer.Flush(); // nothing may land in the gradients after they are zeroed
        gradPartition.zero_();
        foreach (var zp in parameters) zp.Param.grad = null;
    }

    public ModelStateBytes StateBytes()
    {
        long param = master.numel() * master.element_size()
                     + parameters.Where(z => z.IsGathered).Sum(z => z.FullBytes)
                     + SecondaryBytes;
        // The reduce-scatter's packing buffers are gradient memory too, as stage 0 counts its reduction bucket.
        long grad = gradPartition.numel() * gradPartition.element_size() + unitReducer.BufferBytes
                    + parameters.Sum(z => Utils.GradientHandles.GradientBytes(z.Param));
        return new ModelStateBytes(param, grad, OptimizerStateBytes.Count(Optimizer));
    }

    /// <summary>Bytes of hpZ's secondary partitions on this rank (0 without hpZ).</summary>
    public long SecondaryBytes => parameters.Sum(z => z.Secondary?.Bytes ?? 0);

    /// <summary>The ZeRO++ groups (hpZ, qwZ, qgZ) this strategy runs with.</summary>
    internal ZeroPlusPlusGroups ZeroPlusPlus => zeroPlusPlus;

    /// <summary><c>stage3_gather_16bit_weights_on_model_save</c>.</summary>
    internal bool Gather16BitWeightsOnSave { get; }

    public void Dispose()
    {
        UnregisterOwnership();
        foreach (var u in units) u.Dispose();
        unitReducer.Dispose();
        foreach (var zp in parameters) zp.Secondary?.Dispose();
        zeroPlusPlus.Dispose();
    }
}
