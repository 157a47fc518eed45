using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Where a rank reads one parameter's saved state from: its fp32 values (<c>master</c>) and optimizer state kinds as
/// flat ranges of the parameter as this rank holds it, and the step counts recorded for them.
/// </summary>
internal abstract class ParameterSource : IDisposable
{
    /// <summary>The parameter's shape as this rank holds it.</summary>
    public abstract long[] Shape { get; }

    /// <summary>Elements [offset, offset + count) of <paramref name="kind"/> (fp32), in this rank's flattened shape.</summary>
    public abstract Tensor Read(string kind, long offset, long count);

    /// <summary>The distinct optimizer step counts recorded for elements [offset, offset + count).</summary>
    public abstract IEnumerable<long> Steps(long offset, long count);

    /// <summary>Releases what the source assembled (the shards' own tensors belong to their readers).</summary>
    public virtual void Dispose()
    {
    }

    /// <summary>The parameter of a shard of the same model-parallel layout (or of another pipeline size, by name).</summary>
    public static ParameterSource Direct(ShardReader reader, CheckpointParameter p) => new DirectSource(reader, p);

    private sealed class DirectSource(ShardReader reader, CheckpointParameter p) : ParameterSource
    {
        public override long[] Shape => p.Shape;
        public override Tensor Read(string kind, long offset, long count) => reader.Read(kind, p.Offset + offset, count);
        public override IEnumerable<long> Steps(long offset, long count) => reader.Steps(p.Offset + offset, count);
    }
}

/// <summary>
/// A parameter saved at another tensor-parallel size: the saved slices (one per saved tensor rank) are concatenated
/// along the dimension the manifest records for them into the whole tensor, which is cut into this run's number of
/// slices along the same dimension; this rank reads its own. A parameter saved whole (replicated across tensor ranks) is
/// read from saved tensor rank 0. Each kind is assembled once, on first read.
/// </summary>
internal sealed class ReslicedSource : ParameterSource
{
    private readonly IReadOnlyList<(ShardReader Reader, CheckpointParameter Param)> slices;
    private readonly int tp, tensorRank;
    private readonly Dictionary<string, Tensor> assembled = new(StringComparer.Ordinal);
    private readonly List<Tensor> handed = new();

    /// <param name="slices">The saved slices, by saved tensor rank (one entry when the parameter was saved whole).</param>
    /// <param name="tp">This run's tensor-parallel size.</param>
    /// <param name="tensorRank">This rank's tensor-parallel rank.</param>
    public ReslicedSource(IReadOnlyList<(ShardReader Reader, CheckpointParameter Param)> slices, int tp, int tensorRank)
    {
        this.slices = slices;
        this.tp = tp;
        this.tensorRank = tensorRank;
        var first = slices[0].Param;
        if (first.PartitionDim is not int dim)
        {
            Shape = first.Shape;
            return;
        }
        var whole = (long[])first.Shape.Clone();
        whole[dim] = slices.Sum(s => s.Param.Shape[dim]);
        if (whole[dim] % tp != 0)
            throw new InvalidDataException($"parameter '{first.Name}' has {whole[dim]} elements along dimension {dim} in the checkpoint, " +
                                           $"which tensor-parallel size {tp} does not divide");
        whole[dim] /= tp;
        Shape = whole;
    }

    /// <summary>The name of the parameter.</summary>
    public string Name => slices[0].Param.Name;

    public override long[] Shape { get; }

    public override Tensor Read(string kind, long offset, long count)
    {
        var range = Mine(kind).narrow(0, offset, count);
        handed.Add(range);
        return range;
    }

    /// <summary>The step counts of the whole parameter (any range of this rank's slice may come from any saved slice).</summary>
    public override IEnumerable<long> Steps(long offset, long count) =>
        steps ??= slices.SelectMany(s => s.Reader.Steps(s.Param.Offset, s.Param.Numel)).Distinct().ToList();

    private List<long>? steps;

    private Tensor Mine(string kind)
    {
        if (assembled.TryGetValue(kind, out var hit)) return hit;
        using var scope = NewDisposeScope();
        var first = slices[0].Param;
        Tensor mine;
        if (first.PartitionDim is not int dim) mine = slices[0].Reader.Read(kind, first.Offset, first.Numel).alias();
        else
        {
            var whole = cat(slices.Select(s => s.Reader.Read(kind, s.Param.Offset, s.Param.Numel).view(s.Param.Shape)).ToList(), dim);
            mine = whole.chunk(tp, dim)[tensorRank].contiguous().view(-1);
        }
        assembled[kind] = mine.DetachFromDisposeScope();
        return assembled[kind];
    }

    public override void Dispose()
    {
        foreach (var t in handed.Concat(assembled.Values)) t.Dispose();
        handed.Clear();
        assembled.Clear();
    }
}
