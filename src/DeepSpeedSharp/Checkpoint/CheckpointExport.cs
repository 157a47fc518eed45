using DeepSpeedSharp.IO;
using DeepSpeedSharp.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>What <see cref="CheckpointExport.Export"/> wrote.</summary>
/// <param name="TagDirectory">The checkpoint read.</param>
/// <param name="Tensors">Tensors written.</param>
/// <param name="Elements">Elements written.</param>
/// <param name="Bytes">Size of the output file.</param>
public sealed record ExportSummary(string TagDirectory, int Tensors, long Elements, long Bytes);

/// <summary>
/// Consolidates a checkpoint of any world size and ZeRO stage into one safetensors file under the model's own
/// parameter (and buffer) names — what DeepSpeed's <c>zero_to_fp32.py</c> produces, without running any code from the
/// checkpoint. Single process; every file read is checked against its SHA-256.
/// </summary>
public static class CheckpointExport
{
    /// <summary>The tag directory for <paramref name="tag"/>, or the one <c>latest</c> names when it is null.</summary>
    public static string ResolveTag(string directory, string? tag)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"checkpoint directory '{directory}' does not exist");
        tag ??= CheckpointNames.ReadLatest(directory)
                ?? throw new FileNotFoundException($"'{directory}' has no '{CheckpointNames.LatestFile}' file; pass --tag (tags: {string.Join(", ", CheckpointInspector.Tags(directory))})");
        CheckpointNames.CheckTag(tag);
        var dir = Path.Combine(directory, tag);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"checkpoint tag '{tag}' does not exist in '{directory}'");
        return dir;
    }

    /// <summary>Writes the consolidated weights (fp32, or converted to <paramref name="dtype"/>) to <paramref name="outputPath"/>.</summary>
    public static ExportSummary Export(string directory, string? tag, string outputPath, ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"export dtype {dtype} is not supported; use fp32, bf16 or fp16");
        TorchRuntime.EnsureLoaded();
        var tagDir = ResolveTag(directory, tag);
        var manifest = CheckpointManifest.Read(tagDir);
        if (manifest.ModelParallelSize > 1)
            throw new InvalidDataException($"checkpoint '{tagDir}' holds {manifest.ModelParallelSize} model-parallel shards ({manifest.Topology}); " +
                                           "export consolidates data-parallel (ZeRO) shards only — merging tensor or pipeline shards into one model is not available in this version");
        using var reader = new ShardReader(tagDir, manifest);
        using var scope = NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var p in reader.Shard.Parameters)
            tensors.Add(new(p.Name, reader.Read("master", p.Offset, p.Numel).view(p.Shape).to(dtype)));
        if (reader.Shard.ModuleStatesFile is { } moduleStates)
            foreach (var (name, t) in reader.File(moduleStates))
                tensors.Add(new(name, t.is_floating_point() ? t.to(dtype) : t));
        var dir = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(outputPath)}.{Environment.ProcessId}.tmp");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["source"] = $"deepspeedsharp checkpoint {manifest.Tag}" };
        SafeTensors.Write(tmp, tensors, metadata);
        File.Move(tmp, outputPath, overwrite: true);
        return new ExportSummary(tagDir, tensors.Count, tensors.Sum(t => t.Value.numel()), new FileInfo(outputPath).Length);
    }
}
