using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// The shards a rank loads from. Normally one: the shard of its own model-parallel rank. A pipeline module's parameters are
/// named by layer index (<c>3.attn.weight</c>, <c>tied_modules.embed.weight</c>), the same whatever stage holds them, so a
/// pipeline checkpoint loads into another number of stages: a stage then looks its parameters up by name in every shard
/// of its tensor rank (a tied weight, saved by each stage holding it, is taken from the first). A checkpoint of another
/// tensor-parallel size loads too: each parameter is reassembled from its saved slices and cut for this rank
/// (<see cref="ReslicedSource"/>).
/// </summary>
internal sealed class ShardSet : IDisposable
{
    private readonly List<ShardReader> readers;
    private readonly int savedTp, tp, tensorRank;
    private readonly Dictionary<string, ParameterSource?> sources = new(StringComparer.Ordinal);

    private ShardSet(List<ShardReader> readers, bool single, int savedTp = 1, int tp = 1, int tensorRank = 0)
    {
        this.readers = readers;
        IsOwnShard = single;
        (this.savedTp, this.tp, this.tensorRank) = (savedTp, tp, tensorRank);
    }

    /// <summary>Opens the shards <paramref name="place"/> loads from, or explains why the checkpoint does not fit.</summary>
    public static ShardSet Open(string tagDirectory, CheckpointManifest m, CheckpointPlacement place)
    {
        int savedTp = m.Topology?.Dim("model") ?? 1, tp = place.Topology.Dim("model");
        if (m.ModelParallelSize == place.MpSize && savedTp == tp)
            return new ShardSet([new ShardReader(tagDirectory, m, place.MpRank)], single: true);
        int savedPp = m.Topology?.Dim("pipe") ?? 1, pp = place.Topology.Dim("pipe");
        // A stage holds some of the model's parameters under names of its own: loading from or into one needs names that
        // do not depend on the split — a PipelineModule's layer-index names, or the unsplit model's names it records.
        bool modelNamed = m.Shards.Any(s => s.Parameters.Any(p => p.ModelName != null));
        if (!place.LayerNamed && !modelNamed && savedPp != pp)
            throw new InvalidDataException($"checkpoint '{tagDirectory}' was saved with model-parallel size {m.ModelParallelSize} ({m.Topology}); " +
                                           $"this run has {place.MpSize} ({place.Topology}). The data-parallel and tensor-parallel sizes may differ; " +
                                           "the pipeline size only for a PipelineModule, or for a plain model when the pipeline recorded the model's names (PipelineModule.ModelNames)");
        // Model-parallel rank = stage × tp + tensor rank (axes pipe, data, model). With the tensor size unchanged: the shards
        // of this tensor rank, stage by stage; with another tensor size: every shard (a parameter is cut anew from its slices).
        int myTensorRank = place.MpRank % tp;
        var readers = m.Shards.Where(s => savedTp != tp || s.MpRank % savedTp == myTensorRank).OrderBy(s => s.MpRank)
            .Select(s => new ShardReader(tagDirectory, m, s.MpRank)).ToList();
        return new ShardSet(readers, single: false, savedTp, tp, myTensorRank);
    }

    /// <summary>True when reading this rank's own shard (same model-parallel layout as the run that saved it).</summary>
    public bool IsOwnShard { get; }

    /// <summary>The first shard (this rank's own, when <see cref="IsOwnShard"/>).</summary>
    public ShardReader First => readers[0];

    /// <summary>Where this rank reads parameter <paramref name="name"/> (the unsplit model's name, see
    /// <see cref="CheckpointNames.Keys"/>) from, or false when no shard has it.</summary>
    public bool TryFind(string name, out ParameterSource source)
    {
        if (!sources.TryGetValue(name, out var found)) sources[name] = found = Find(name);
        source = found!;
        return found != null;
    }

    private ParameterSource? Find(string name)
    {
        if (savedTp == tp)
        {
            foreach (var r in readers)
                if (r.ByModelName.TryGetValue(name, out var p)) return ParameterSource.Direct(r, p);
            return null;
        }
        // One slice per saved tensor rank (the first stage holding it), or the whole parameter from saved tensor rank 0.
        var slices = new List<(ShardReader, CheckpointParameter)>();
        for (int t = 0; t < savedTp; t++)
        {
            var hit = readers.Where(r => r.Shard.MpRank % savedTp == t).Select(r => (r, p: r.ByModelName.GetValueOrDefault(name)))
                .FirstOrDefault(x => x.p != null);
            if (hit.p == null) return t == 0 ? null : throw new InvalidDataException($"the checkpoint has parameter '{name}' on tensor rank 0 but not on tensor rank {t}");
            slices.Add((hit.r, hit.p));
            if (hit.p.PartitionDim == null) break;
        }
        return new ReslicedSource(slices, tp, tensorRank);
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
        foreach (var source in sources.Values) source?.Dispose();
        foreach (var r in readers) r.Dispose();
    }
}
