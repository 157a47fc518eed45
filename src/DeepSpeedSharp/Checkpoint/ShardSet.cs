using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// The shards a rank loads from. Normally one: the shard of its own model-parallel rank. A pipeline module's parameters are
/// named by layer index (<c>3.attn.weight</c>, <c>tied_modules.embed.weight</c>), the same whatever stage holds them, so a
/// pipeline checkpoint loads into another number of stages: a stage then looks its parameters up by name in every shard
/// of its tensor rank (a tied weight, saved by each stage holding it, is taken from the first).
/// </summary>
internal sealed class ShardSet : IDisposable
{
    private readonly List<ShardReader> readers;

    private ShardSet(List<ShardReader> readers, bool single)
    {
        this.readers = readers;
        IsOwnShard = single;
    }

    /// <summary>Opens the shards <paramref name="place"/> loads from, or explains why the checkpoint does not fit.</summary>
    public static ShardSet Open(string tagDirectory, CheckpointManifest m, CheckpointPlacement place)
    {
        if (m.ModelParallelSize == place.MpSize) return new ShardSet([new ShardReader(tagDirectory, m, place.MpRank)], single: true);
        int savedTp = m.Topology?.Dim("model") ?? 1, tp = place.Topology.Dim("model");
        if (!place.LayerNamed || savedTp != tp)
            throw new InvalidDataException($"checkpoint '{tagDirectory}' was saved with model-parallel size {m.ModelParallelSize} ({m.Topology}); " +
                                           $"this run has {place.MpSize} ({place.Topology}). The data-parallel size may differ; the tensor size may not, " +
                                           "and the pipeline size only for a PipelineModule");
        // Model-parallel rank = stage × tp + tensor rank (axes pipe, data, model): the shards of this tensor rank, stage by stage.
        int myTensorRank = place.MpRank % tp;
        var readers = m.Shards.Where(s => s.MpRank % savedTp == myTensorRank).OrderBy(s => s.MpRank)
            .Select(s => new ShardReader(tagDirectory, m, s.MpRank)).ToList();
        return new ShardSet(readers, single: false);
    }

    /// <summary>True when reading this rank's own shard (same model-parallel layout as the run that saved it).</summary>
    public bool IsOwnShard { get; }

    /// <summary>The first shard (this rank's own, when <see cref="IsOwnShard"/>).</summary>
    public ShardReader First => readers[0];

    /// <summary>Every parameter name the shards hold.</summary>
    public IEnumerable<string> ParameterNames => readers.SelectMany(r => r.Parameters.Keys).Distinct();

    /// <summary>The shard holding <paramref name="name"/> and its entry, or false.</summary>
    public bool TryFind(string name, out ShardReader reader, out CheckpointParameter parameter)
    {
        foreach (var r in readers)
            if (r.Parameters.TryGetValue(name, out parameter!))
            {
                reader = r;
                return true;
            }
        reader = null!;
        parameter = null!;
        return false;
    }

    /// <summary>The buffers and frozen parameters of every shard's module-states file (the first shard's on a name clash).</summary>
    public Dictionary<string, Tensor> ModuleStates()
    {
        var all = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var r in readers)
            if (r.Shard.ModuleStatesFile is { } file)
                foreach (var (name, t) in r.File(file)) all.TryAdd(name, t);
        return all;
    }

    public void Dispose()
    {
        foreach (var r in readers) r.Dispose();
    }
}
