using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// DeepSpeed's <c>PipelineParallelGrid</c>: the one place that says which rank is which. It lays the initialised world
/// out on a <see cref="ProcessTopology"/> (usually <see cref="PipeModelDataParallelTopology"/>) and creates every group
/// once — data, pipe, tensor ("model" axis), model (pipe × tensor: the ranks holding one replica) and the stage-to-stage
/// pairs — so that every part of the engine takes its groups from here (<see cref="GetGroup"/> by name). It is the
/// <c>mpu</c> <see cref="DeepSpeed.Initialize"/> accepts. Every rank must create it, with the same topology; it owns and
/// disposes its groups.
/// </summary>
public sealed class PipelineParallelGrid : IModelParallelUnit, IDisposable
{
    private readonly Dictionary<string, ProcessGroup> groups = new(StringComparer.Ordinal);
    private readonly Dictionary<int, ProcessGroup> p2p = new();
    private readonly List<ProcessGroup> owned = new();

    /// <summary>Group names accepted by <see cref="GetGroup"/>.</summary>
    public static class Groups
    {
        /// <summary>Ranks that differ only in the data coordinate (gradient averaging, ZeRO partitioning).</summary>
        public const string Data = "data";

        /// <summary>Ranks that differ only in the pipe coordinate: one pipeline.</summary>
        public const string Pipe = "pipe";

        /// <summary>Ranks that differ only in the model (tensor) coordinate: Megatron's tensor-parallel group.</summary>
        public const string Tensor = "tensor";

        /// <summary>Ranks sharing the data coordinate: one model replica (pipe × tensor).</summary>
        public const string Model = "model";
    }

    /// <summary>Lays the initialised world (<see cref="Dist.Initialize(string?, TimeSpan?)"/>) out on <paramref name="topology"/>.</summary>
    public PipelineParallelGrid(ProcessTopology topology) : this(topology, Dist.Rank, Dist.WorldSize, Dist.NewGroup) { }

    /// <summary>A grid of <paramref name="pipelineParallelSize"/> × <paramref name="tensorParallelSize"/> × the remaining data-parallel ranks.</summary>
    public static PipelineParallelGrid Create(int pipelineParallelSize = 1, int tensorParallelSize = 1)
    {
        int world = Dist.WorldSize;
        if (pipelineParallelSize < 1 || tensorParallelSize < 1 || world % (pipelineParallelSize * tensorParallelSize) != 0)
            throw new ArgumentException($"pipeline size {pipelineParallelSize} × tensor size {tensorParallelSize} must divide the world size {world}: " +
                                        "the data-parallel size is world / (pipeline × tensor)");
        return new PipelineParallelGrid(new PipeModelDataParallelTopology(pipelineParallelSize, tensorParallelSize, world / (pipelineParallelSize * tensorParallelSize)));
    }

    internal PipelineParallelGrid(ProcessTopology topology, int globalRank, int worldSize, Func<IReadOnlyList<int>, ProcessGroup> newGroup)
    {
        ArgumentNullException.ThrowIfNull(topology);
        if (topology.WorldSize != worldSize)
            throw new ArgumentException($"the topology {topology} spans {topology.WorldSize} ranks, but the world has {worldSize}");
        Topology = topology;
        GlobalRank = globalRank;
        var coord = topology.GetCoord(globalRank);
        StageId = coord.Pipe;
        DataParallelId = coord.Data;
        TensorParallelId = coord.Model;
        PipeParallelSize = Math.Max(1, topology.GetDim(Axis.Pipe));
        DataParallelSize = Math.Max(1, topology.GetDim(Axis.Data));
        TensorParallelSize = Math.Max(1, topology.GetDim(Axis.Model));
        try
        {
            // The same creation order on every rank: model groups, data, pipe, tensor, then the stage pairs.
            groups[Groups.Model] = Mine(Enumerable.Range(0, DataParallelSize).Select(d => ModelGroupRanks(topology, d)).ToList(), newGroup);
            groups[Groups.Data] = Mine(AxisLists(topology, Axis.Data), newGroup);
            groups[Groups.Pipe] = Mine(AxisLists(topology, Axis.Pipe), newGroup);
            groups[Groups.Tensor] = Mine(AxisLists(topology, Axis.Model), newGroup);
            foreach (var pair in StagePairs(topology))
            {
                var g = newGroup(pair);
                owned.Add(g);
                if (g.IsMember) p2p[pair.Single(r => r != globalRank)] = g;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The topology the world is laid out on.</summary>
    public ProcessTopology Topology { get; }

    /// <summary>This process's global rank.</summary>
    public int GlobalRank { get; }

    /// <summary>This rank's pipeline stage (<c>stage_id</c>).</summary>
    public int StageId { get; }

    /// <summary>This rank's data-parallel index (<c>data_parallel_id</c>).</summary>
    public int DataParallelId { get; }

    /// <summary>This rank's tensor-parallel index (the "model" coordinate).</summary>
    public int TensorParallelId { get; }

    /// <summary>Pipeline stages.</summary>
    public int PipeParallelSize { get; }

    /// <summary>Data-parallel replicas: world / (pipeline × tensor).</summary>
    public int DataParallelSize { get; }

    /// <summary>Tensor-parallel ranks.</summary>
    public int TensorParallelSize { get; }

    /// <summary>A group by name: <c>data</c>, <c>pipe</c>, <c>tensor</c> or <c>model</c> (see <see cref="Groups"/>).</summary>
    public ProcessGroup GetGroup(string name) => groups.TryGetValue(name, out var g) ? g
        : throw new ArgumentException($"the grid has no group '{name}'; the groups are {string.Join(", ", groups.Keys)}", nameof(name));

    /// <summary>
    /// The two-rank group of this rank and the rank of the same data and tensor coordinates on an adjacent stage
    /// (<paramref name="peerGlobalRank"/>), for sending activations and gradients between stages.
    /// </summary>
    public ProcessGroup GetP2PGroup(int peerGlobalRank) => p2p.TryGetValue(peerGlobalRank, out var g) ? g
        : throw new ArgumentException($"rank {GlobalRank} has no stage-to-stage group with rank {peerGlobalRank}; its neighbours are {string.Join(", ", p2p.Keys.Order())}", nameof(peerGlobalRank));

    /// <summary>The global rank on <paramref name="stageId"/> with this rank's data and tensor coordinates (<c>stage_to_global</c>).</summary>
    public int StageToGlobal(int stageId) =>
        Topology.HasAxis(Axis.Pipe) ? Topology.GetRank(Topology.GetCoord(GlobalRank).With(Axis.Pipe, stageId).ToDictionary()) : GlobalRank;

    /// <summary>
    /// The model-parallel rank used in checkpoint file names (DeepSpeed's <c>mp_rank_XX</c>): this rank's index among the
    /// ranks sharing its data coordinate.
    /// </summary>
    public int GetModelParallelRank() => groups[Groups.Model].Rank;

    /// <inheritdoc/>
    public ProcessGroup GetModelParallelGroup() => groups[Groups.Model];

    /// <inheritdoc/>
    public int GetModelParallelWorldSize() => groups[Groups.Model].Size;

    /// <inheritdoc/>
    public ProcessGroup GetDataParallelGroup() => groups[Groups.Data];

    /// <inheritdoc/>
    public int GetDataParallelRank() => DataParallelId;

    /// <inheritdoc/>
    public int GetDataParallelWorldSize() => DataParallelSize;

    /// <inheritdoc/>
    public ProcessGroup GetTensorModelParallelGroup() => groups[Groups.Tensor];

    /// <inheritdoc/>
    public int GetTensorModelParallelRank() => TensorParallelId;

    /// <inheritdoc/>
    public int GetTensorModelParallelWorldSize() => TensorParallelSize;

    /// <inheritdoc/>
    public ProcessGroup? GetPipelineModelParallelGroup() => groups[Groups.Pipe];

    /// <inheritdoc/>
    public int GetPipelineModelParallelRank() => StageId;

    /// <inheritdoc/>
    public int GetPipelineModelParallelWorldSize() => PipeParallelSize;

    /// <inheritdoc/>
    public bool IsPipelineFirstStage() => StageId == 0;

    /// <inheritdoc/>
    public bool IsPipelineLastStage() => StageId == PipeParallelSize - 1;

    /// <summary>The ranks of one model replica (data coordinate <paramref name="data"/>), sorted, as DeepSpeed builds them.</summary>
    internal static IReadOnlyList<int> ModelGroupRanks(ProcessTopology topology, int data) =>
        topology.HasAxis(Axis.Data) ? topology.GetAxisList(Axis.Data, data).Order().ToArray() : Enumerable.Range(0, topology.WorldSize).ToArray();

    /// <summary>The communicator lists of an axis; an absent axis gives one single-rank list per rank.</summary>
    internal static IReadOnlyList<IReadOnlyList<int>> AxisLists(ProcessTopology topology, string axis) =>
        topology.HasAxis(axis) ? topology.GetAxisCommLists(axis)
            : Enumerable.Range(0, topology.WorldSize).Select(r => (IReadOnlyList<int>)new[] { r }).ToArray();

    /// <summary>Adjacent-stage pairs {rank, next stage's rank} of every pipeline (wrapping around), each pair once; none with one stage.</summary>
    internal static IReadOnlyList<IReadOnlyList<int>> StagePairs(ProcessTopology topology)
    {
        int pp = topology.GetDim(Axis.Pipe);
        if (pp <= 1) return Array.Empty<IReadOnlyList<int>>();
        var seen = new HashSet<(int, int)>();
        var pairs = new List<IReadOnlyList<int>>();
        foreach (var line in topology.GetAxisCommLists(Axis.Pipe))
            for (int i = 0; i < line.Count; i++)
            {
                int a = line[i], b = line[(i + 1) % line.Count];
                if (seen.Add((Math.Min(a, b), Math.Max(a, b)))) pairs.Add(new[] { Math.Min(a, b), Math.Max(a, b) });
            }
        return pairs;
    }

    private ProcessGroup Mine(IReadOnlyList<IReadOnlyList<int>> lists, Func<IReadOnlyList<int>, ProcessGroup> newGroup)
    {
        ProcessGroup? mine = null;
        foreach (var ranks in lists)
        {
            var g = newGroup(ranks);
            owned.Add(g);
            if (g.IsMember) mine = g;
        }
        return mine ?? throw new InvalidOperationException($"rank {GlobalRank} is in none of the groups [{string.Join("; ", lists.Select(l => string.Join(",", l)))}]");
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Topology}: rank {GlobalRank} is stage {StageId}, data {DataParallelId}, tensor {TensorParallelId}";

    /// <summary>Disposes every group the grid created.</summary>
    public void Dispose()
    {
        foreach (var g in owned) g.Dispose();
        owned.Clear();
    }
}
