using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Reassembles the whole model from a checkpoint's model-parallel shards: within each pipeline stage, tensor-parallel
/// slices are concatenated along the dimension the manifest records for them (column-parallel and vocabulary slices on
/// dim 0, row-parallel on dim 1) and replicated parameters are taken from tensor rank 0; the stages' parameters are
/// united (a weight tied across stages, <c>tied_modules.KEY.*</c>, once). Model-parallel rank m is stage m / tp, tensor rank m % tp (DeepSpeed's order within a replica).
/// </summary>
internal static class ModelParallelMerge
{
    private const string TiedPrefix = "tied_modules.";

    /// <summary>Every trainable parameter (fp32) and buffer of the whole model, by the model's own names.</summary>
    public static List<KeyValuePair<string, Tensor>> Tensors(string tagDir, CheckpointManifest manifest)
    {
        int tp = manifest.Topology?.Dim("model") ?? 1, pp = manifest.Topology?.Dim("pipe") ?? 1;
        if (tp * pp != manifest.ModelParallelSize)
            throw new InvalidDataException($"checkpoint '{tagDir}': topology {manifest.Topology} does not account for {manifest.ModelParallelSize} model-parallel shards");
        var result = new List<KeyValuePair<string, Tensor>>();
        var seen = new HashSet<string>();
        for (int stage = 0; stage < pp; stage++)
        {
            var readers = Enumerable.Range(0, tp).Select(t => new ShardReader(tagDir, manifest, stage * tp + t)).ToList();
            try
            {
                foreach (var p in readers[0].Shard.Parameters)
                {
                    if (!seen.Add(p.Name))
                    {
                        // A weight tied across stages (a pipeline's tied_modules.KEY.*) is saved by every stage holding it, equal on each.
                        if (p.Name.StartsWith(TiedPrefix, StringComparison.Ordinal)) continue;
                        throw new InvalidDataException($"checkpoint '{tagDir}': parameter '{p.Name}' appears in more than one pipeline stage");
                    }
                    var parts = readers.Select(r => Slice(tagDir, r, p)).ToList();
                    var merged = p.PartitionDim is int dim && tp > 1 ? cat(parts, dim) : parts[0].clone();
                    result.Add(new(p.Name, merged.DetachFromDisposeScope()));
                }
                if (readers[0].Shard.ModuleStatesFile is { } moduleStates)
                    foreach (var (name, t) in readers[0].File(moduleStates))
                        if (seen.Add(name)) result.Add(new(name, t.clone().DetachFromDisposeScope()));
            }
            finally
            {
                foreach (var r in readers) r.Dispose();
            }
        }
        return result;
    }

    private static Tensor Slice(string tagDir, ShardReader reader, CheckpointParameter like)
    {
        var p = reader.Shard.Parameters.FirstOrDefault(q => q.Name == like.Name)
                ?? throw new InvalidDataException($"checkpoint '{tagDir}': model-parallel rank {reader.Shard.MpRank} lacks parameter '{like.Name}' that tensor rank 0 of its pipeline stage has");
        if (p.PartitionDim != like.PartitionDim)
            throw new InvalidDataException($"checkpoint '{tagDir}': parameter '{p.Name}' is split along dimension {p.PartitionDim?.ToString() ?? "none"} on model-parallel rank {reader.Shard.MpRank} but {like.PartitionDim?.ToString() ?? "none"} elsewhere");
        return reader.Read("master", p.Offset, p.Numel).view(p.Shape);
    }
}
