using System.Globalization;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// DeepSpeed's <c>ProcessTopology</c>: maps n-dimensional Cartesian coordinates over named axes to global ranks in
/// row-major order (the last axis varies fastest), so <c>axes = [pipe, data, model]</c> puts the ranks of one
/// tensor-parallel group next to each other. The mapping, the axis communicator lists and the filters are exactly
/// DeepSpeed's, so a Megatron-DeepSpeed rank layout is unchanged here. Pure arithmetic: no communication.
/// </summary>
public class ProcessTopology
{
    private readonly string[] axes;
    private readonly int[] dims;
    private readonly int[] strides;

    /// <summary>Creates a topology with one axis per name; <paramref name="dims"/> gives each axis's length.</summary>
    public ProcessTopology(IReadOnlyList<string> axes, IReadOnlyList<int> dims)
    {
        ArgumentNullException.ThrowIfNull(axes);
        ArgumentNullException.ThrowIfNull(dims);
        if (axes.Count == 0) throw new ArgumentException("a process topology needs at least one axis", nameof(axes));
        if (axes.Count != dims.Count)
            throw new ArgumentException($"a process topology needs one dimension per axis: axes [{string.Join(", ", axes)}], dims [{string.Join(", ", dims)}]");
        if (axes.Distinct(StringComparer.Ordinal).Count() != axes.Count)
            throw new ArgumentException($"topology axes must be distinct: [{string.Join(", ", axes)}]", nameof(axes));
        for (int i = 0; i < dims.Count; i++)
            if (dims[i] < 1) throw new ArgumentException($"topology axis '{axes[i]}' has dimension {dims[i]}; every dimension must be at least 1", nameof(dims));
        this.axes = axes.ToArray();
        this.dims = dims.ToArray();
        strides = new int[this.dims.Length];
        int stride = 1;
        for (int i = this.dims.Length - 1; i >= 0; i--)
        {
            strides[i] = stride;
            stride = checked(stride * this.dims[i]);
        }
        WorldSize = stride;
    }

    /// <summary>The axis names in layout order (<c>get_axis_names</c>).</summary>
    public IReadOnlyList<string> Axes => axes;

    /// <summary>The length of each axis, in layout order.</summary>
    public IReadOnlyList<int> Dims => dims;

    /// <summary>Number of ranks the topology spans (<c>world_size</c>): the product of the dimensions.</summary>
    public int WorldSize { get; }

    /// <summary>The axis names in layout order (<c>get_axis_names</c>).</summary>
    public IReadOnlyList<string> GetAxisNames() => axes;

    /// <summary>Processes along <paramref name="axis"/>; 0 when the topology has no such axis (as DeepSpeed's <c>get_dim</c>).</summary>
    public int GetDim(string axis)
    {
        int i = Array.IndexOf(axes, axis);
        return i < 0 ? 0 : dims[i];
    }

    /// <summary>True when the topology has the axis.</summary>
    public bool HasAxis(string axis) => Array.IndexOf(axes, axis) >= 0;

    /// <summary>The global rank at the given coordinate; every axis must be given (<c>get_rank</c>).</summary>
    public int GetRank(IReadOnlyDictionary<string, int> coordinate)
    {
        ArgumentNullException.ThrowIfNull(coordinate);
        if (coordinate.Count != axes.Length || axes.Any(a => !coordinate.ContainsKey(a)))
            throw new ArgumentException($"GetRank needs a value for each axis [{string.Join(", ", axes)}]; got [{string.Join(", ", coordinate.Keys)}] (use FilterMatch for slices)");
        int rank = 0;
        for (int i = 0; i < axes.Length; i++)
        {
            int v = coordinate[axes[i]];
            if (v < 0 || v >= dims[i]) throw new ArgumentOutOfRangeException(nameof(coordinate), $"coordinate {axes[i]}={v} is outside 0..{dims[i] - 1}");
            rank += v * strides[i];
        }
        return rank;
    }

    /// <summary>The global rank at the coordinate given as (axis, value) pairs.</summary>
    public int GetRank(params (string Axis, int Value)[] coordinate) =>
        GetRank(coordinate.ToDictionary(c => c.Axis, c => c.Value, StringComparer.Ordinal));

    /// <summary>The coordinate owned by <paramref name="rank"/> (<c>get_coord</c>).</summary>
    public ProcessCoord GetCoord(int rank)
    {
        if (rank < 0 || rank >= WorldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} not found in topology (world size {WorldSize})");
        var values = new int[axes.Length];
        for (int i = 0; i < axes.Length; i++) values[i] = rank / strides[i] % dims[i];
        return new ProcessCoord(axes, values);
    }

    /// <summary>
    /// Lists of ranks whose coordinates agree on every axis except <paramref name="axis"/>: one communicator group per
    /// list, each in increasing <paramref name="axis"/> order (<c>get_axis_comm_lists</c>). Empty when the axis is absent.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> GetAxisCommLists(string axis)
    {
        int a = Array.IndexOf(axes, axis);
        if (a < 0) return Array.Empty<IReadOnlyList<int>>();
        var lists = new List<IReadOnlyList<int>>();
        // Every combination of the other axes, in row-major order of those axes.
        for (int rank = 0; rank < WorldSize; rank++)
        {
            if (rank / strides[a] % dims[a] != 0) continue; // the list starts at coordinate 0 on the axis
            lists.Add(Enumerable.Range(0, dims[a]).Select(k => rank + k * strides[a]).ToArray());
        }
        return lists;
    }

    /// <summary>Ranks whose coordinates match every given (axis, value), in rank order (<c>filter_match</c>).</summary>
    public IReadOnlyList<int> FilterMatch(params (string Axis, int Value)[] filter)
    {
        foreach (var (axis, _) in filter)
            if (!HasAxis(axis)) throw new ArgumentException($"the topology has no axis '{axis}' (axes: {string.Join(", ", axes)})");
        return Enumerable.Range(0, WorldSize).Where(r =>
        {
            var c = GetCoord(r);
            return filter.All(f => c[f.Axis] == f.Value);
        }).ToArray();
    }

    /// <summary>The ranks whose coordinate on <paramref name="axis"/> is <paramref name="index"/> (<c>get_axis_list</c>).</summary>
    public IReadOnlyList<int> GetAxisList(string axis, int index) => FilterMatch((axis, index));

    /// <summary>
    /// DeepSpeed's <c>get_rank_repr</c>: "axis_NN" for each axis not omitted, joined by <paramref name="outerSeparator"/>
    /// (used in checkpoint file names; by default the data and pipe axes are left out).
    /// </summary>
    public string GetRankRepr(int rank, IReadOnlyCollection<string>? omitAxes = null, string innerSeparator = "_", string outerSeparator = "-")
    {
        omitAxes ??= new[] { "data", "pipe" };
        var c = GetCoord(rank);
        return string.Join(outerSeparator, axes.Where(a => !omitAxes.Contains(a))
            .Select(a => string.Create(CultureInfo.InvariantCulture, $"{a}{innerSeparator}{c[a]:D2}")));
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{GetType().Name}({string.Join(", ", axes.Select((a, i) => $"{a}={dims[i]}"))})";
}

/// <summary>DeepSpeed's <c>PipeDataParallelTopology</c>: axes [pipe, data], data varying fastest.</summary>
public sealed class PipeDataParallelTopology : ProcessTopology
{
    /// <summary>A topology of <paramref name="numPp"/> pipeline stages × <paramref name="numDp"/> data-parallel replicas.</summary>
    public PipeDataParallelTopology(int numPp, int numDp) : base(new[] { Axis.Pipe, Axis.Data }, new[] { numPp, numDp }) { }
}

/// <summary>DeepSpeed's <c>PipeModelDataParallelTopology</c>: axes [pipe, data, model], the tensor (model) axis varying fastest.</summary>
public sealed class PipeModelDataParallelTopology : ProcessTopology
{
    /// <summary>
    /// A topology of <paramref name="numPp"/> pipeline stages × <paramref name="numMp"/> tensor-parallel ranks ×
    /// <paramref name="numDp"/> data-parallel replicas (the argument order is DeepSpeed's; the axis order is pipe, data, model).
    /// </summary>
    public PipeModelDataParallelTopology(int numPp, int numMp, int numDp) : base(new[] { Axis.Pipe, Axis.Data, Axis.Model }, new[] { numPp, numDp, numMp }) { }
}

/// <summary>The axis names DeepSpeed's topologies use.</summary>
public static class Axis
{
    /// <summary>Pipeline stages.</summary>
    public const string Pipe = "pipe";

    /// <summary>Data-parallel replicas.</summary>
    public const string Data = "data";

    /// <summary>Tensor (Megatron "model") parallel ranks.</summary>
    public const string Model = "model";
}
