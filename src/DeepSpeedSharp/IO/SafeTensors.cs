using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.IO;

/// <summary>
/// Reads and writes the safetensors format (8-byte little-endian header length, a JSON header mapping each
/// name to dtype, shape and data offsets, then raw little-endian data). Loading never executes anything.
/// </summary>
public static class SafeTensors
{
    /// <summary>Largest header accepted, so a corrupt length cannot make us allocate without bound.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly (string Name, ScalarType Type)[] DTypes =
    {
        ("F32", ScalarType.Float32), ("BF16", ScalarType.BFloat16), ("F16", ScalarType.Float16),
        ("F64", ScalarType.Float64), ("I64", ScalarType.Int64), ("I32", ScalarType.Int32),
        ("I16", ScalarType.Int16), ("I8", ScalarType.Int8), ("U8", ScalarType.Byte), ("BOOL", ScalarType.Bool),
    };

    /// <summary>The safetensors dtype name of a TorchSharp scalar type.</summary>
    public static string DTypeName(ScalarType type) =>
        DTypes.FirstOrDefault(d => d.Type == type).Name
        ?? throw new NotSupportedException($"safetensors: tensors of type {type} cannot be stored");

    /// <summary>Writes the tensors (CPU copies are taken as needed) in name order, with optional string metadata.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var header = SafeTensorsHeader.Encode(items.Select(kv => new SafeTensorsLayout(kv.Key, kv.Value.dtype, kv.Value.shape)), metadata);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(header);
        foreach (var (_, t) in items)
        {
            using var cpu = t.detach().cpu().contiguous();
            WriteTensorBytes(stream, cpu);
        }
    }

    /// <summary>Reads every tensor of a file onto the CPU. Errors name the file and what is wrong with it.</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, out _);

    /// <summary>Reads every tensor and the header's string metadata.</summary>
    public static Dictionary<string, Tensor> Read(string path, out Dictionary<string, string> metadata)
    {
        using var reader = new SafeTensorsReader(path);
        metadata = new Dictionary<string, string>(reader.Metadata);
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in reader.Entries.Values.OrderBy(e => e.Begin)) result[e.Name] = reader.Read(e.Name);
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary><see cref="Write"/> to a temporary file beside <paramref name="path"/>, then renamed over it, so a reader
    /// never sees a half-written file. The directory is created as needed.</summary>
    public static void WriteAtomic(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string temp = path + $".tmp-{Environment.ProcessId}";
        Write(temp, tensors);
        File.Move(temp, path, overwrite: true);
    }

    internal static (string Name, ScalarType Type, long[] Shape, long Begin, long End) ParseEntry(string path, string name, JsonNode? node)
    {
        try
        {
            var o = node!.AsObject();
            string dtype = o["dtype"]!.GetValue<string>();
            var type = DTypes.FirstOrDefault(d => d.Name == dtype);
            if (type.Name == null) throw Corrupt(path, $"tensor '{name}' has unsupported dtype '{dtype}'");
            var shape = o["shape"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            var offsets = o["data_offsets"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            long expected = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(type.Type);
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] - offsets[0] != expected)
                throw Corrupt(path, $"tensor '{name}' has data_offsets [{string.Join(", ", offsets)}] that do not match its shape and dtype ({expected} bytes)");
            return (name, type.Type, shape, offsets[0], offsets[1]);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
        {
            throw Corrupt(path, $"tensor '{name}' has a malformed header entry");
        }
    }

    internal static long ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Only the header's string metadata (<c>__metadata__</c>), without reading any tensor data.</summary>
    public static Dictionary<string, string> ReadMetadata(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
        var header = ReadHeader(stream, path, out _);
        var metadata = new Dictionary<string, string>();
        if (header.TryGetPropertyValue("__metadata__", out var node) && node is JsonObject meta)
            foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
        return metadata;
    }

    internal static JsonObject ReadHeader(Stream stream, string path, out long headerLength)
    {
        long fileLength = stream.Length;
        Span<byte> len = stackalloc byte[8];
        if (stream.Read(len) != 8) throw Corrupt(path, "the file is shorter than the 8-byte header length");
        headerLength = BinaryPrimitives.ReadInt64LittleEndian(len);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > fileLength)
            throw Corrupt(path, $"header length {headerLength} does not fit the file ({fileLength} bytes)");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        try
        {
            return JsonNode.Parse(headerBytes)?.AsObject() ?? throw Corrupt(path, "the header is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw Corrupt(path, $"the header is not valid JSON ({e.Message})");
        }
    }

    internal static InvalidDataException Corrupt(string path, string why) => new($"safetensors file '{path}': {why}");

    private static void WriteTensorBytes(Stream stream, Tensor cpu)
    {
        if (cpu.numel() == 0) return;
        long total = cpu.numel() * cpu.element_size();
        if (total <= int.MaxValue) { stream.Write(cpu.bytes); return; }
        using var flat = cpu.flatten();
        long chunk = (1L << 30) / cpu.element_size();
        for (long s = 0; s < flat.numel(); s += chunk)
        {
            using var part = flat.narrow(0, s, Math.Min(chunk, flat.numel() - s));
            stream.Write(part.bytes);
        }
    }

    private static void ReadTensorBytes(Stream stream, Tensor t)
    {
        if (t.numel() == 0) return;
        using var flat = t.view(-1);
        long chunk = (1L << 30) / t.element_size();
        for (long s = 0; s < flat.numel(); s += chunk)
        {
            using var part = flat.narrow(0, s, Math.Min(chunk, flat.numel() - s));
            stream.ReadExactly(part.bytes);
        }
    }
}
