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
/// along dim 1, as recorded in the manifest) and pipeline stages into the whole model (<see cref="ConsolidatedModel"/>) —
/// what DeepSpeed's <c>zero_to_fp32.py</c> produces, without running any code from the checkpoint and without libtorch
/// (the checkpoint is read and the file written as bytes). Single process; every file read is checked against its
/// SHA-256. <see cref="HuggingFaceExport"/> writes the same tensors as a Hugging Face model directory.
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

    /// <summary>
    /// Writes the consolidated weights (fp32, or converted to <paramref name="dtype"/>; buffers of other types keep
    /// theirs) to the safetensors file <paramref name="outputPath"/>, through a temporary file beside it, one tensor at a
    /// time. Reads the checkpoint as bytes: no libtorch is needed.
    /// </summary>
    public static ExportSummary Export(string directory, string? tag, string outputPath, ScalarType dtype = ScalarType.Float32)
    {
        CheckDtype(dtype);
        var tagDir = ResolveTag(directory, tag);
        if (Directory.Exists(outputPath))
            throw new IOException($"output '{outputPath}' is a directory: name the .safetensors file to write (or export a Hugging Face model directory with --format hf)");
        var manifest = CheckpointManifest.Read(tagDir);
        using var model = ConsolidatedModel.Open(tagDir, manifest);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["source"] = $"deepspeedsharp checkpoint {manifest.Tag}" };
        WriteThroughTemporary(outputPath, tmp => model.Write(tmp, model.Tensors, dtype, metadata));
        return new ExportSummary(tagDir, model.Tensors.Count, model.Tensors.Sum(t => t.Numel), new FileInfo(outputPath).Length);
    }

    /// <summary>Refuses an export dtype other than float32, bfloat16 and float16.</summary>
    internal static void CheckDtype(ScalarType dtype)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"export dtype {dtype} is not supported; use fp32, bf16 or fp16");
    }

    /// <summary>Runs <paramref name="write"/> on a temporary file beside <paramref name="path"/>, then renames it over <paramref name="path"/>; removes it on failure.</summary>
    private static void WriteThroughTemporary(string path, Action<string> write)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            write(tmp);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
