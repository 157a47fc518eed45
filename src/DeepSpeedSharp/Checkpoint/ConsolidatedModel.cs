using DeepSpeedSharp.IO;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// The whole model a checkpoint holds, reassembled from its model-parallel shards without torch: within each pipeline
/// stage, tensor-parallel slices are concatenated along the dimension the manifest records for them (column-parallel and
/// vocabulary slices on dim 0, row-parallel on dim 1) and replicated parameters are taken from tensor rank 0; the stages'
/// parameters are united (a weight tied across stages, <c>tied_modules.KEY.*</c>, once), each stage's buffers and frozen
/// parameters (its tensor rank 0's module-states file) following its trainable parameters. Model-parallel rank m is stage
/// m / tp, tensor rank m % tp (DeepSpeed's order within a replica). Opening reads only the manifest and file headers;
/// each tensor's data is read when it is written (<see cref="Write"/>), so no more than one chunk of it is held.
/// </summary>
internal sealed class ConsolidatedModel : IDisposable
{
    private const string TiedPrefix = "tied_modules.";
    private readonly CheckpointDataFiles files;

    private ConsolidatedModel(CheckpointDataFiles files, List<ModelTensor> tensors)
    {
        this.files = files;
        Tensors = tensors;
    }

    /// <summary>Every trainable parameter and buffer of the whole model, in the checkpoint's order, by the model's own names.</summary>
    public IReadOnlyList<ModelTensor> Tensors { get; }

    /// <summary>The tensors of the checkpoint in <paramref name="tagDir"/>.</summary>
    public static ConsolidatedModel Open(string tagDir, CheckpointManifest manifest)
    {
        int tp = manifest.Topology?.Dim("model") ?? 1, pp = manifest.Topology?.Dim("pipe") ?? 1;
        if (tp * pp != manifest.ModelParallelSize)
            throw new InvalidDataException($"checkpoint '{tagDir}': topology {manifest.Topology} does not account for {manifest.ModelParallelSize} model-parallel shards");
        var files = new CheckpointDataFiles(tagDir, manifest);
        try
        {
            var tensors = new List<ModelTensor>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int stage = 0; stage < pp; stage++)
            {
                var ranks = Enumerable.Range(0, tp).Select(t => new MasterRanges(files, stage * tp + t)).ToList();
                foreach (var p in ranks[0].Shard.Parameters)
                {
                    if (!seen.Add(p.ExportName))
                    {
                        // A weight tied across stages (a pipeline's tied_modules.KEY.*) is saved by every stage holding it, equal on each.
                        if (p.Name.StartsWith(TiedPrefix, StringComparison.Ordinal)) continue;
                        throw new InvalidDataException($"checkpoint '{tagDir}': parameter '{p.ExportName}' appears in more than one pipeline stage");
                    }
                    tensors.Add(Parameter(tagDir, ranks, p));
                }
                if (ranks[0].Shard.ModuleStatesFile is { } moduleStates)
                {
                    var file = files.Open(moduleStates);
                    foreach (var t in file.Tensors)
                        if (seen.Add(t.Name)) tensors.Add(new StoredTensor(file, t));
                }
            }
            return new ConsolidatedModel(files, tensors);
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (of this model) as <paramref name="dtype"/> (floating-point tensors; others keep
    /// their type) to the safetensors file <paramref name="path"/>, in name order, one tensor at a time.
    /// </summary>
    public void Write(string path, IEnumerable<ModelTensor> tensors, ScalarType dtype, IReadOnlyDictionary<string, string> metadata)
    {
        var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        RawSafeTensorsWriter.Write(path, byName.Values.Select(t => t.Layout(dtype)), metadata, (layout, stream) => byName[layout.Name].WriteTo(stream, dtype));
    }

    /// <inheritdoc/>
    public void Dispose() => files.Dispose();

    /// <summary>Parameter <paramref name="p"/> of tensor rank 0: whole, or merged with its slices on the other tensor ranks.</summary>
    private static MergedParameter Parameter(string tagDir, List<MasterRanges> ranks, CheckpointParameter p)
    {
        var slices = ranks.Select(r => Slice(tagDir, r, p)).ToList();
        foreach (var (_, q) in slices)
            if (q.Shape.Aggregate(1L, (a, b) => a * b) != q.Numel)
                throw new InvalidDataException($"checkpoint '{tagDir}': parameter '{q.Name}' has shape [{string.Join(", ", q.Shape)}] but {q.Numel} elements");
        if (p.PartitionDim is not int dim || ranks.Count == 1) return new MergedParameter(p.ExportName, p.Shape, [slices[0]], 0);
        if (dim < 0 || dim >= p.Shape.Length)
            throw new InvalidDataException($"checkpoint '{tagDir}': parameter '{p.Name}' of shape [{string.Join(", ", p.Shape)}] is split along dimension {dim}, which it does not have");
        foreach (var (_, q) in slices)
            if (q.Shape.Length != p.Shape.Length || q.Shape.Where((d, i) => i != dim && d != p.Shape[i]).Any())
                throw new InvalidDataException($"checkpoint '{tagDir}': the slices of parameter '{p.Name}' do not fit together along dimension {dim}: " +
                                               $"[{string.Join(", ", p.Shape)}] and [{string.Join(", ", q.Shape)}]");
        var shape = (long[])p.Shape.Clone();
        shape[dim] = slices.Sum(s => s.Param.Shape[dim]);
        return new MergedParameter(p.ExportName, shape, slices, dim);
    }

    private static (MasterRanges Ranges, CheckpointParameter Param) Slice(string tagDir, MasterRanges ranks, CheckpointParameter like)
    {
        var p = ranks.Parameters.GetValueOrDefault(like.Name)
                ?? throw new InvalidDataException($"checkpoint '{tagDir}': model-parallel rank {ranks.Shard.MpRank} lacks parameter '{like.Name}' that tensor rank 0 of its pipeline stage has");
        if (p.PartitionDim != like.PartitionDim)
            throw new InvalidDataException($"checkpoint '{tagDir}': parameter '{p.Name}' is split along dimension {p.PartitionDim?.ToString() ?? "none"} on model-parallel rank {ranks.Shard.MpRank} but {like.PartitionDim?.ToString() ?? "none"} elsewhere");
        return (ranks, p);
    }
}
