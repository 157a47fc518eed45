using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSpeedSharp.IO;

namespace DeepSpeedSharp.Weights;

/// <summary>
/// A whole model's weights on disk, opened for reading tensor by tensor (or slice by slice): one safetensors file, or a
/// Hugging Face model directory — <c>model.safetensors</c>, or shards <c>model-0000K-of-0000N.safetensors</c> listed by
/// <c>model.safetensors.index.json</c>'s <c>weight_map</c>. Only headers are read on opening; every shard is checked
/// against its header (a truncated shard is named) and the index against the shards before any tensor is read.
/// </summary>
public sealed class WeightFiles : IDisposable
{
    /// <summary>The index file of a sharded Hugging Face checkpoint (the one <c>dss checkpoint export --format hf</c> writes).</summary>
    public const string IndexFile = Checkpoint.HuggingFaceShards.IndexFile;

    /// <summary>The single weights file of an unsharded Hugging Face checkpoint.</summary>
    public const string SingleFile = Checkpoint.HuggingFaceShards.SingleFile;

    private readonly List<SafeTensorsReader> readers = new();
    private readonly Dictionary<string, (SafeTensorsReader Reader, SafeTensorEntry Entry)> tensors = new(StringComparer.Ordinal);
    private readonly string? index;

    private WeightFiles(string path, string? index)
    {
        Path = path;
        this.index = index;
    }

    /// <summary>The file or directory opened.</summary>
    public string Path { get; }

    /// <summary>Every tensor by name, with the file that holds it.</summary>
    public IReadOnlyDictionary<string, (SafeTensorsReader Reader, SafeTensorEntry Entry)> Tensors => tensors;

    /// <summary>Bytes read from the files' data sections so far.</summary>
    public long BytesRead => readers.Sum(r => r.BytesRead);

    /// <summary>
    /// Opens <paramref name="path"/>: a safetensors file, or a Hugging Face model directory. Errors are one line naming
    /// the file (and tensor) at fault.
    /// </summary>
    public static WeightFiles Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path)) return OpenFiles(path, null, [path]);
        if (!Directory.Exists(path)) throw new FileNotFoundException($"weights '{path}' do not exist (a safetensors file or a Hugging Face model directory is needed)", path);
        var indexPath = System.IO.Path.Combine(path, IndexFile);
        if (File.Exists(indexPath)) return OpenIndexed(path, indexPath);
        var single = System.IO.Path.Combine(path, SingleFile);
        if (File.Exists(single)) return OpenFiles(path, null, [single]);
        string hint = File.Exists(System.IO.Path.Combine(path, "pytorch_model.bin")) || Directory.EnumerateFiles(path, "pytorch_model*.bin").Any()
            ? " (it has pytorch_model*.bin: only safetensors weights are read; convert them with transformers' save_pretrained(safe_serialization=True))"
            : "";
        throw new FileNotFoundException($"'{path}' is not a Hugging Face model directory: it has neither {SingleFile} nor {IndexFile}{hint}", path);
    }

    /// <summary>Where <paramref name="name"/> is (or would be) read from, for messages: empty for a single file.</summary>
    public string Where(string name) =>
        index is null ? "" : tensors.TryGetValue(name, out var t) ? $" (in '{System.IO.Path.GetFileName(t.Reader.Path)}')" : $" (not in the index '{index}')";

    private static WeightFiles OpenIndexed(string directory, string indexPath)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(indexPath)); }
        catch (JsonException e) { throw new InvalidDataException($"index '{indexPath}' is not valid JSON: {e.Message}"); }
        if (root?["weight_map"] is not JsonObject map || map.Count == 0)
            throw new InvalidDataException($"index '{indexPath}' has no \"weight_map\" object of tensor name → shard file");
        var byFile = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (name, node) in map)
        {
            string? file = node is JsonValue v && v.TryGetValue<string>(out var f) ? f : null;
            if (string.IsNullOrEmpty(file) || file != System.IO.Path.GetFileName(file))
                throw new InvalidDataException($"index '{indexPath}' maps tensor '{name}' to {node?.ToJsonString() ?? "null"}; a shard file name in the same directory is needed");
            if (!File.Exists(System.IO.Path.Combine(directory, file)))
                throw new FileNotFoundException($"index '{indexPath}' maps tensor '{name}' to '{file}', which is not in '{directory}'");
            (byFile.TryGetValue(file, out var list) ? list : byFile[file] = new List<string>()).Add(name);
        }
        var files = byFile.Keys.Order(StringComparer.Ordinal).Select(f => System.IO.Path.Combine(directory, f)).ToList();
        var result = OpenFiles(directory, indexPath, files);
        // Only the tensors the index maps to a shard are visible, each from that shard.
        var visible = new Dictionary<string, (SafeTensorsReader, SafeTensorEntry)>(StringComparer.Ordinal);
        foreach (var (file, names) in byFile)
            foreach (var name in names)
            {
                var reader = result.readers.First(r => System.IO.Path.GetFileName(r.Path) == file);
                if (!reader.Entries.TryGetValue(name, out var entry))
                {
                    result.Dispose();
                    throw new InvalidDataException($"index '{indexPath}' maps tensor '{name}' to '{file}', which has no such tensor");
                }
                visible[name] = (reader, entry);
            }
        result.tensors.Clear();
        foreach (var (name, t) in visible) result.tensors[name] = t;
        return result;
    }

    private static WeightFiles OpenFiles(string path, string? index, IReadOnlyList<string> files)
    {
        var result = new WeightFiles(path, index);
        try
        {
            foreach (var file in files)
            {
                var reader = new SafeTensorsReader(file);
                result.readers.Add(reader);
                foreach (var (name, entry) in reader.Entries)
                    if (!result.tensors.TryAdd(name, (reader, entry)) && index is null)
                        throw new InvalidDataException($"tensor '{name}' is in both '{result.tensors[name].Reader.Path}' and '{file}'");
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var r in readers) r.Dispose();
        readers.Clear();
    }
}
