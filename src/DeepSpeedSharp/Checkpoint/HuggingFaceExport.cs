using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>What <see cref="HuggingFaceExport.Export"/> wrote.</summary>
/// <param name="TagDirectory">The checkpoint read.</param>
/// <param name="Tensors">Tensors written.</param>
/// <param name="Elements">Elements written.</param>
/// <param name="TotalSize">Bytes of tensor data (the index's <c>total_size</c>).</param>
/// <param name="Files">The weight files written, in order.</param>
/// <param name="ConfigSource">The <c>config.json</c> copied into the directory, or null when the checkpoint directory has none.</param>
public sealed record HuggingFaceExportSummary(string TagDirectory, int Tensors, long Elements, long TotalSize, IReadOnlyList<string> Files, string? ConfigSource);

/// <summary>
/// Writes a checkpoint's consolidated weights (<see cref="CheckpointExport"/>'s tensors) as a Hugging Face model
/// directory: <c>model.safetensors</c>, or shards <c>model-0000K-of-0000N.safetensors</c> with
/// <c>model.safetensors.index.json</c> (<c>{"metadata": {"total_size": …}, "weight_map": {name: file}}</c>) as
/// transformers' <c>save_pretrained</c> writes them (<see cref="HuggingFaceShards"/>), each shard with metadata
/// <c>{"format": "pt"}</c>; and the checkpoint directory's <c>config.json</c>, when it has one, with <c>torch_dtype</c> set
/// to the exported dtype. The directory is built beside the target and renamed into place; no libtorch is needed, and
/// no more than one tensor's chunk is held in memory whatever the model's size.
/// </summary>
public static class HuggingFaceExport
{
    /// <summary>The model configuration file of a Hugging Face model directory (and of a checkpoint directory holding one).</summary>
    public const string ConfigFile = "config.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Exports tag <paramref name="tag"/> (default: the one <c>latest</c> names) of the checkpoint in
    /// <paramref name="directory"/> to the new (or empty) directory <paramref name="outputDirectory"/>, floating-point
    /// tensors as <paramref name="dtype"/>, in shards of at most <paramref name="maxShardBytes"/>.
    /// </summary>
    public static HuggingFaceExportSummary Export(string directory, string? tag, string outputDirectory, ScalarType dtype = ScalarType.Float32,
        long maxShardBytes = HuggingFaceShards.DefaultMaxShardBytes)
    {
        CheckpointExport.CheckDtype(dtype);
        if (maxShardBytes < 1) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), $"the shard size must be at least 1 byte, got {maxShardBytes}");
        var tagDir = CheckpointExport.ResolveTag(directory, tag);
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDirectory));
        CheckTarget(outputDirectory, target);
        var configSource = Path.Combine(directory, ConfigFile);
        var config = File.Exists(configSource) ? Config(configSource, dtype) : null;
        var manifest = CheckpointManifest.Read(tagDir);
        using var model = ConsolidatedModel.Open(tagDir, manifest);
        var sizes = model.Tensors.Select(t => t.Layout(dtype).Bytes).ToList();
        var shards = HuggingFaceShards.Plan(sizes, maxShardBytes);
        var names = HuggingFaceShards.FileNames(shards.Count);
        var parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $".{Path.GetFileName(target)}.tmp-{Environment.ProcessId}");
        try
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            Directory.CreateDirectory(tmp);
            var metadata = new Dictionary<string, string> { ["format"] = "pt" };
            for (int s = 0; s < shards.Count; s++)
                model.Write(Path.Combine(tmp, names[s]), shards[s].Select(i => model.Tensors[i]), dtype, metadata);
            if (shards.Count > 1)
            {
                var map = shards.SelectMany((shard, s) => shard.Select(i => (model.Tensors[i].Name, File: names[s])));
                WriteJson(Path.Combine(tmp, HuggingFaceShards.IndexFile), Index(sizes.Sum(), map));
            }
            if (config != null) WriteJson(Path.Combine(tmp, ConfigFile), config);
            if (Directory.Exists(target)) Directory.Delete(target); // empty: checked above
            Directory.Move(tmp, target);
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
        return new HuggingFaceExportSummary(tagDir, model.Tensors.Count, model.Tensors.Sum(t => t.Numel), sizes.Sum(), names,
            config != null ? configSource : null);
    }

    /// <summary>Hugging Face's name of an export dtype (<c>torch_dtype</c>).</summary>
    public static string TorchDtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => throw new ArgumentException($"export dtype {dtype} is not supported; use fp32, bf16 or fp16"),
    };

    /// <summary>Refuses an output that is a file or a directory with anything in it.</summary>
    private static void CheckTarget(string given, string target)
    {
        if (File.Exists(target))
            throw new IOException($"output '{given}' is a file; --format hf writes a directory: pass a new or empty directory");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IOException($"output directory '{given}' exists and is not empty; pass a new or empty directory (nothing was written)");
    }

    /// <summary>The checkpoint directory's config.json with <c>torch_dtype</c> (and <c>dtype</c>, newer transformers' name, when present) set.</summary>
    private static JsonObject Config(string path, ScalarType dtype)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON ({e.Message.Split('\n')[0]}); a Hugging Face config.json is a JSON object");
        }
        if (node is not JsonObject config) throw new InvalidDataException($"'{path}' is not a JSON object; a Hugging Face config.json is one");
        config["torch_dtype"] = TorchDtypeName(dtype);
        if (config.ContainsKey("dtype")) config["dtype"] = TorchDtypeName(dtype);
        return config;
    }

    /// <summary><c>{"metadata": {"total_size": N}, "weight_map": {name: file, …}}</c>, names sorted as Python's <c>sort_keys</c> sorts them.</summary>
    private static JsonObject Index(long totalSize, IEnumerable<(string Name, string File)> map)
    {
        var weightMap = new JsonObject();
        foreach (var (name, file) in map.OrderBy(x => x.Name, StringComparer.Ordinal)) weightMap[name] = file;
        return new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalSize }, ["weight_map"] = weightMap };
    }

    private static void WriteJson(string path, JsonNode node) => File.WriteAllText(path, node.ToJsonString(Json) + "\n");
}
