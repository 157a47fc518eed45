using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Training;

/// <summary>
/// The fixed order and offsets of the trainable parameters in one flat index space, padded so that it splits into
/// equal partitions, one per data-parallel rank (rank r owns [r·P, (r+1)·P)). The order is the module's parameter
/// order, so every rank (and every run) lays out and reduces gradients identically.
/// </summary>
internal sealed class FlatLayout
{
    public FlatLayout(IReadOnlyList<Parameter> parameters, int worldSize)
        : this(parameters, parameters.Select(p => p.shape).ToList(), parameters.Select(p => p.dtype).ToList(), worldSize)
    {
    }

    /// <summary>A layout whose parameters may currently be empty (ZeRO-3 partitions): shapes and dtypes given explicitly.</summary>
    public FlatLayout(IReadOnlyList<Parameter> parameters, IReadOnlyList<long[]> shapes, IReadOnlyList<ScalarType> dtypes, int worldSize)
    {
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize));
        Parameters = parameters;
        Shapes = shapes;
        DTypes = dtypes;
        Offsets = new long[parameters.Count];
        Numels = new long[parameters.Count];
        long offset = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            Offsets[i] = offset;
            Numels[i] = shapes[i].Aggregate(1L, (a, b) => a * b);
            offset += Numels[i];
        }
        Total = offset;
        PartitionSize = (Total + worldSize - 1) / worldSize;
        Padded = PartitionSize * worldSize;
        WorldSize = worldSize;
    }

    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Each parameter's full shape.</summary>
    public IReadOnlyList<long[]> Shapes { get; }

    /// <summary>Each parameter's dtype.</summary>
    public IReadOnlyList<ScalarType> DTypes { get; }
    public long[] Offsets { get; }
    public long[] Numels { get; }

    /// <summary>Elements of all parameters.</summary>
    public long Total { get; }

    /// <summary><see cref="Total"/> rounded up to a multiple of the world size.</summary>
    public long Padded { get; }

    /// <summary>Elements per rank.</summary>
    public long PartitionSize { get; }

    public int WorldSize { get; }

    /// <summary>First flat index owned by <paramref name="rank"/>.</summary>
    public long PartitionStart(int rank) => rank * PartitionSize;

    /// <summary>For a flat range [start, end): how many elements of it each rank owns.</summary>
    public long[] CountsPerRank(long start, long end)
    {
        var counts = new long[WorldSize];
        for (int r = 0; r < WorldSize; r++)
        {
            long s = Math.Max(start, PartitionStart(r)), e = Math.Min(end, PartitionStart(r) + PartitionSize);
            counts[r] = Math.Max(0, e - s);
        }
        return counts;
    }

    /// <summary>The parameters overlapping [start, end), with the overlapping piece in parameter and range coordinates.</summary>
    public IEnumerable<(int Index, long ParamOffset, long RangeOffset, long Count)> Pieces(long start, long end)
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            long s = Math.Max(start, Offsets[i]), e = Math.Min(end, Offsets[i] + Numels[i]);
            if (s < e) yield return (i, s - Offsets[i], s - start, e - s);
        }
    }
}
