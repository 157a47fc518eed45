using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// The whole parallel plan of a job in one object (torchtitan's <c>ParallelDims</c>, picotron's process-group manager):
/// how many ranks hold pipeline stages, tensor slices and data-parallel replicas, the virtual stages, whether
/// activations are split along the sequence, the ZeRO stage and hpZ's secondary partition, this rank's coordinates and
/// the process groups. <see cref="DeepSpeed.Initialize"/> builds it once (<see cref="Create"/>) from the mpu — a
/// <see cref="PipelineParallelGrid"/>, a <c>PipelineModule</c>'s grid or any <see cref="IModelParallelUnit"/> — or the
/// data-parallel group, plus the config; the engine exposes it as <c>engine.Layout</c> and every part that needs the
/// layout asks it. <c>dss validate-config</c> builds the same object without processes (<see cref="Plan"/>, the sizes
/// given by flags) and checks it with the same rules (<see cref="Validate"/>, <see cref="ResolveBatchSizes"/>).
/// </summary>
public sealed partial class ParallelLayout : IDisposable
{
    private ParallelLayout(DeepSpeedConfig config, int world, int pipeline, int tensor, int data, int virtualStages, bool pipelineEngine,
        bool sequenceParallel, string pipelineSource)
    {
        Config = config;
        WorldSize = world;
        PipelineParallelSize = pipeline;
        TensorParallelSize = tensor;
        DataParallelSize = data;
        VirtualStages = virtualStages;
        PipelineEngine = pipelineEngine;
        SequenceParallel = sequenceParallel;
        PipelineSource = pipelineSource;
        Tensor = TensorParallelContext.Single;
    }

    /// <summary>The config the layout was checked against (its ZeRO stage, hpZ size, pipeline and batch keys).</summary>
    public DeepSpeedConfig Config { get; }

    /// <summary>Every rank of the job.</summary>
    public int WorldSize { get; }

    /// <summary>Pipeline stages (1: no pipeline).</summary>
    public int PipelineParallelSize { get; }

    /// <summary>Tensor-parallel ranks (Megatron's tensor slicing; 1: none).</summary>
    public int TensorParallelSize { get; }

    /// <summary>Data-parallel replicas: the ranks gradients are averaged over and ZeRO partitions across.</summary>
    public int DataParallelSize { get; }

    /// <summary>Ranks holding one model replica: pipeline × tensor (DeepSpeed's <c>mp_world_size</c>).</summary>
    public int ModelParallelSize => PipelineParallelSize * TensorParallelSize;

    /// <summary>Model chunks per pipeline stage (1 without the interleaved schedule).</summary>
    public int VirtualStages { get; }

    /// <summary>True when activations outside attention and MLP are split along the sequence across the tensor ranks
    /// (Megatron's sequence parallelism: some parameter is marked sequence-parallel).</summary>
    public bool SequenceParallel { get; }

    /// <summary>Ranks the sequence is split over: the tensor-parallel size with <see cref="SequenceParallel"/>, else 1.</summary>
    public int SequenceParallelSize => SequenceParallel ? TensorParallelSize : 1;

    /// <summary>True when the model is a <c>PipelineModule</c> (trained by the pipeline engine, even with one stage).</summary>
    public bool PipelineEngine { get; }

    /// <summary>zero_optimization.stage.</summary>
    public int ZeroStage => Config.ZeroOptimization.Stage;

    /// <summary>ZeRO++ hpZ's secondary partition: data-parallel ranks per model copy (1: hpZ off).</summary>
    public int HpzPartitionSize => Math.Max(1, Config.ZeroOptimization.ZeroHpzPartitionSize);

    /// <summary>Where the pipeline size came from, for messages ("pipeline.stages", "--pipeline", "the PipelineModule's stages").</summary>
    internal string PipelineSource { get; }

    /// <summary>True for a layout built by <see cref="Plan"/>: sizes only, no processes or groups.</summary>
    public bool IsPlan => JobGroup == null;

    /// <summary>This process's global rank (0 in a plan).</summary>
    public int GlobalRank { get; private init; }

    /// <summary>This rank's pipeline stage.</summary>
    public int PipelineParallelRank { get; private init; }

    /// <summary>This rank's tensor-parallel rank.</summary>
    public int TensorParallelRank => Tensor.Rank;

    /// <summary>This rank's data-parallel rank.</summary>
    public int DataParallelRank => DataParallelGroup?.Rank ?? 0;

    /// <summary>This rank's model-parallel rank (the <c>mp_rank_XX</c> of checkpoint files).</summary>
    public int ModelParallelRank { get; private init; }

    /// <summary>The mpu the layout was built from, or null (every rank a data-parallel replica).</summary>
    public IModelParallelUnit? Mpu { get; private init; }

    /// <summary>The data-parallel group (null in a plan).</summary>
    public ProcessGroup? DataParallelGroup { get; private init; }

    /// <summary>The group of one model replica (pipeline × tensor); null without an mpu or in a plan.</summary>
    public ProcessGroup? ModelParallelGroup { get; private init; }

    /// <summary>This rank's pipeline (one rank per stage); null without pipeline stages.</summary>
    public ProcessGroup? PipelineGroup { get; private init; }

    /// <summary>This rank's tensor-parallel group, rank and size, as the parallel layers use them.</summary>
    internal TensorParallelContext Tensor { get; private init; }

    /// <summary>This rank's tensor-parallel group; null with one tensor rank.</summary>
    public ProcessGroup? TensorParallelGroup => Tensor.Group;

    /// <summary>Every rank of the job (the world with an mpu, else the data-parallel group): checkpoints are agreed on and
    /// committed over it. Null in a plan.</summary>
    public ProcessGroup? JobGroup { get; private init; }

    /// <summary>ZeRO++ hpZ's secondary group: this rank's block of <see cref="HpzPartitionSize"/> consecutive data-parallel
    /// ranks, all on one host, holding a model copy between them (created by <see cref="CreateGroups"/>; owned by the
    /// layout). Null without hpZ.</summary>
    public ProcessGroup? HpzGroup { get; private set; }

    /// <summary>Every data-parallel group of the job (global ranks), learnt at <see cref="Create"/> when ZeRO++ splits the
    /// data-parallel group by host (hpZ or qgZ); null otherwise, and in a plan.</summary>
    internal IReadOnlyList<int[]>? DataParallelGroups { get; private set; }

    /// <summary>True when hpZ partitions the data-parallel group (ZeRO-3, partition size &gt; 1, more than one data-parallel rank).</summary>
    private bool HpzOn => ZeroStage == 3 && HpzPartitionSize > 1 && DataParallelSize > 1;

    /// <summary>hpZ's blocks: consecutive runs of <see cref="HpzPartitionSize"/> ranks of every data-parallel group (DeepSpeed's layout).</summary>
    private IReadOnlyList<IReadOnlyList<int>> HpzBlocks() =>
        DataParallelGroups!.SelectMany(g => g.Chunk(HpzPartitionSize)).Select(b => (IReadOnlyList<int>)b).ToList();

    /// <summary>
    /// Creates the groups the layout owns — hpZ's secondary group — once <see cref="Validate"/> has passed. Collective:
    /// every rank of the world calls it, in the same order.
    /// </summary>
    public void CreateGroups()
    {
        if (IsPlan) throw new InvalidOperationException("a planned layout has no processes to create groups on");
        if (HpzOn && HpzGroup == null) HpzGroup = Dist.NewGroups(HpzBlocks());
    }

    /// <summary>Disposes the groups the layout created (not the mpu's).</summary>
    public void Dispose()
    {
        HpzGroup?.Dispose();
        HpzGroup = null;
    }

    /// <summary>
    /// The layout of a running job: from <paramref name="mpu"/> (its sizes, ranks and groups) or, without one, every rank of
    /// <paramref name="dataParallelGroup"/> (default: the world) a data-parallel replica. Not yet checked: call
    /// <see cref="Validate"/>.
    /// </summary>
    /// <param name="config">The job's config.</param>
    /// <param name="world">The world group.</param>
    /// <param name="mpu">The topology (a <c>PipelineModule</c>'s grid for a pipeline), or null.</param>
    /// <param name="dataParallelGroup">The data-parallel group without an mpu (null: the world).</param>
    /// <param name="pipelineModuleStages">The <c>PipelineModule</c>'s stages and virtual stages when the model is one.</param>
    /// <param name="sequenceParallel">True when some parameter is marked sequence-parallel.</param>
    public static ParallelLayout Create(DeepSpeedConfig config, ProcessGroup world, IModelParallelUnit? mpu = null, ProcessGroup? dataParallelGroup = null,
        (int Stages, int VirtualStages)? pipelineModuleStages = null, bool sequenceParallel = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(world);
        if (mpu != null && dataParallelGroup != null)
            throw new ArgumentException("pass either mpu (whose data-parallel group the engine uses) or dataParallelGroup, not both");
        var data = mpu?.GetDataParallelGroup() ?? dataParallelGroup ?? world;
        if (!data.IsMember)
            throw new ArgumentException($"global rank {data.GlobalRank} is not a member of the data-parallel group it was given (members: {string.Join(",", data.GlobalRanks)})");
        var tensor = TensorParallelContext.From(mpu);
        int pipeline = mpu?.GetPipelineModelParallelWorldSize() ?? 1;
        var modelGroup = mpu?.GetModelParallelGroup();
        // Without an mpu the job is the data-parallel group (a caller may run several independent groups in one world).
        var layout = new ParallelLayout(config, mpu == null ? data.Size : world.Size, pipeline, tensor.Size, data.Size, pipelineModuleStages?.VirtualStages ?? 1,
            pipelineModuleStages != null, sequenceParallel, pipelineModuleStages != null ? "the PipelineModule's stages" : mpu != null ? "the mpu's pipeline size" : "the pipeline size (the model is not a PipelineModule)")
        {
            GlobalRank = world.Rank,
            PipelineParallelRank = mpu?.GetPipelineModelParallelRank() ?? 0,
            ModelParallelRank = mpu?.GetModelParallelRank() ?? 0,
            Mpu = mpu,
            DataParallelGroup = data,
            ModelParallelGroup = modelGroup,
            PipelineGroup = pipeline > 1 ? mpu?.GetPipelineModelParallelGroup() : null,
            Tensor = tensor,
            JobGroup = mpu == null ? data : world,
        };
        // hpZ's rule (each block on one host) and the groups ZeRO++ builds by host need every data-parallel group: one
        // all-gather over the world, on every rank alike (the config is the same everywhere).
        if (layout.SplitsDataParallelByHost) layout.DataParallelGroups = DataParallelMembership.All(data);
        return layout;
    }

    /// <summary>True when ZeRO++ splits the data-parallel group by host: hpZ's blocks or qgZ's hierarchical reduce.</summary>
    private bool SplitsDataParallelByHost => ZeroStage == 3 && DataParallelSize > 1 && (HpzPartitionSize > 1 || Config.ZeroOptimization.ZeroQuantizedGradients);

    /// <summary>
    /// A layout on paper, for checking a config before any process starts (<c>dss validate-config</c>):
    /// <paramref name="worldSize"/> ranks split into <paramref name="pipeline"/> stages (default: the config's integer
    /// <c>pipeline.stages</c>, else 1) × <paramref name="tensor"/> ranks × the remaining data-parallel replicas.
    /// </summary>
    public static ParallelLayout Plan(DeepSpeedConfig config, int worldSize, int? pipeline = null, int tensor = 1, int virtualStages = 1)
    {
        ArgumentNullException.ThrowIfNull(config);
        int? configured = ConfiguredStages(config);
        int pp = pipeline ?? configured ?? 1;
        string source = pipeline != null ? "--pipeline" : configured != null ? "pipeline.stages" : "the pipeline size";
        int mp = Math.Max(1, pp) * Math.Max(1, tensor);
        // A world that pipeline × tensor does not divide keeps a data size of 0: Validate names the sizes.
        return new ParallelLayout(config, worldSize, pp, tensor, worldSize % mp == 0 ? worldSize / mp : 0, virtualStages, pp > 1, false, source);
    }

    /// <summary>The config's <c>pipeline.stages</c> when it is a number (it may be "auto" or absent).</summary>
    internal static int? ConfiguredStages(DeepSpeedConfig config) => int.TryParse(config.Pipeline.Stages, out var s) ? s : null;

    /// <summary>One line: "pipeline 2 stages × tensor 2 × data parallel 2 = 8 ranks; ZeRO stage 1" (and what else is on).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (PipelineParallelSize > 1 || PipelineEngine)
            parts.Add($"pipeline {PipelineParallelSize} stage{(PipelineParallelSize == 1 ? "" : "s")}" + (VirtualStages > 1 ? $" ({VirtualStages} virtual each)" : ""));
        if (TensorParallelSize > 1) parts.Add($"tensor {TensorParallelSize}" + (SequenceParallel ? " (sequence parallel)" : ""));
        parts.Add($"data parallel {DataParallelSize}");
        string layout = string.Join(" × ", parts) + $" = {WorldSize} rank{(WorldSize == 1 ? "" : "s")}";
        string zero = $"ZeRO stage {ZeroStage}" + (HpzPartitionSize > 1 ? $" with hpZ partitions of {HpzPartitionSize}" : "");
        return $"{layout}; {zero}";
    }
}
