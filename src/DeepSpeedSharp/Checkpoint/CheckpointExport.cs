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
/// parameter (and buffer) names — merging tensor-parallel slices (column and vocabulary slices along dim 0, row slices
/// along dim 1, as recorded in the manifest) and pipeline stages into the whole model — what DeepSpeed's <c>zero_to_fp32.py</c> produces, without running any code from the
/// checkpoint. Single process; every file read is checked against its SHA-256.
/// </summary>
public static class CheckpointExport
{
    /// <summary>The tag directory for <paramref name="tag"/>, or the one <c>latest</c> names when it is null.</summary>
    public static string ResolveTag(string directory, string? tag)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"checkpoint directory '{directory}' does not exist");
        tag ??= CheckpointNames.ReadLatest(directory)
                ?? throw new FileNotFoundException(CheckpointInspector.Tags(directory) is { Count: > 0 } tags
                    ? $"'{directory}' has no '{CheckpointNames.LatestFile}' file; pass --tag (tags: {string.Join(", ", tags)})"
                    : $"'{directory}' holds no checkpoint: no complete tag and no '{CheckpointNames.LatestFile}' file; pass the directory SaveCheckpoint wrote to");
        CheckpointNames.CheckTag(tag);
        return InterruptedResave.FindTagDirectory(directory, tag)
               ?? throw new DirectoryNotFoundException($"checkpoint tag '{tag}' does not exist in '{directory}'");
    }

    /// <summary>Writes the consolidated weights (fp32, or converted to <paramref name="dtype"/>) to <paramref name="outputPath"/>.</summary>
    public static ExportSummary Export(string directory, string? tag, string outputPath, ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"export dtype {dtype} is not supported; use fp32, bf16 or fp16");
        TorchRuntime.EnsureLoaded();
        var tagDir = ResolveTag(directory, tag);
        var manifest = CheckpointManifest.Read(tagDir);
        using var scope = NewDisposeScope();
        var tensors = ModelParallelMerge.Tensors(tagDir, manifest)
            .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.is_floating_point() ? kv.Value.to(dtype) : kv.Value)).ToList();
        var dir = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(outputPath)}.{Environment.ProcessId}.tmp");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["source"] = $"deepspeedsharp checkpoint {manifest.Tag}" };
        SafeTensors.Write(tmp, tensors, metadata);
        File.Move(tmp, outputPath, overwrite: true);
        return new ExportSummary(tagDir, tensors.Count, tensors.Sum(t => t.Value.numel()), new FileInfo(outputPath).Length);
    }
}
