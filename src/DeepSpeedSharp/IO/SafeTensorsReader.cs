using static TorchSharp.torch;

namespace DeepSpeedSharp.IO;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="Type">Its dtype.</param>
/// <param name="Shape">Its shape.</param>
public sealed record SafeTensorEntry(string Name, ScalarType Type, long[] Shape)
{
    internal long Begin { get; init; }
}

/// <summary>
/// An open safetensors file whose header has been read, so that single tensors — or slices of them along one dimension —
/// can be read without the rest of the file. A slice reads only its own byte runs: one contiguous run along
/// dimension 0, one run per index of the leading dimensions otherwise.
/// </summary>
public sealed class SafeTensorsReader : IDisposable
{
    private readonly FileStream stream;
    private readonly long dataStart;
    private readonly Dictionary<string, SafeTensorEntry> entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> metadata = new(StringComparer.Ordinal);

    /// <summary>Opens <paramref name="path"/> and reads its header. Errors name the file and what is wrong with it.</summary>
    public SafeTensorsReader(string path)
    {
        Path = path;
        stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            var header = SafeTensors.ReadHeader(stream, path, out long headerLength);
            dataStart = 8 + headerLength;
            long dataLength = stream.Length - dataStart;
            foreach (var (name, node) in header)
            {
                if (name == "__metadata__")
                {
                    foreach (var (k, v) in node!.AsObject()) metadata[k] = v?.GetValue<string>() ?? "";
                    continue;
                }
                var e = SafeTensors.ParseEntry(path, name, node);
                if (e.End > dataLength)
                    throw SafeTensors.Corrupt(path, $"tensor '{name}' ends at byte {e.End} but the data section has {dataLength} bytes (truncated?)");
                entries[name] = new SafeTensorEntry(name, e.Type, e.Shape) { Begin = e.Begin };
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The tensors of the file, by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries => entries;

    /// <summary>The header's string metadata (<c>__metadata__</c>).</summary>
    public IReadOnlyDictionary<string, string> Metadata => metadata;

    /// <summary>Bytes read from the data section so far (what a sliced load saves shows here).</summary>
    public long BytesRead { get; private set; }

    /// <summary>The whole tensor <paramref name="name"/>, on the CPU.</summary>
    public Tensor Read(string name)
    {
        var e = Entry(name);
        return ReadSlice(name, 0, 0, e.Shape.Length == 0 ? 1 : e.Shape[0]);
    }

    /// <summary>
    /// Indices [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) of dimension
    /// <paramref name="dim"/> of tensor <paramref name="name"/>, on the CPU, reading only those bytes.
    /// </summary>
    public Tensor ReadSlice(string name, int dim, long start, long count)
    {
        var e = Entry(name);
        if (e.Shape.Length == 0) (dim, start, count) = (0, 0, 1); // a scalar: its one element
        var shape = (long[])e.Shape.Clone();
        if (dim >= 0 && dim < shape.Length) shape[dim] = count;
        long numel = shape.Aggregate(1L, (a, b) => a * b);
        using var flat = ReadSliceRange(name, dim, start, count, 0, Math.Max(0, numel));
        return flat.view(shape);
    }

    /// <summary>
    /// Flat elements [<paramref name="flatStart"/>, <paramref name="flatStart"/> + <paramref name="flatCount"/>) of the
    /// slice [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) along dimension
    /// <paramref name="dim"/> of tensor <paramref name="name"/> (row-major), as a 1-D CPU tensor of the file's dtype,
    /// reading only those bytes: what a ZeRO-3 partition of a tensor-parallel slice needs from a whole-model file.
    /// </summary>
    public Tensor ReadSliceRange(string name, int dim, long start, long count, long flatStart, long flatCount)
    {
        var e = Entry(name);
        var shape = e.Shape.Length == 0 ? new long[] { 1 } : e.Shape;
        if (dim < 0 || dim >= shape.Length || start < 0 || count < 0 || start + count > shape[dim])
            throw new ArgumentOutOfRangeException(nameof(start), $"'{name}' [{string.Join(", ", e.Shape)}] has no indices [{start}, {start + count}) along dimension {dim}");
        long inner = shape.Skip(dim + 1).Aggregate(1L, (a, b) => a * b);
        long outer = shape.Take(dim).Aggregate(1L, (a, b) => a * b);
        long run = count * inner, elementSize = SafeTensors.ElementSize(e.Type);
        if (flatStart < 0 || flatCount < 0 || flatStart + flatCount > outer * run)
            throw new ArgumentOutOfRangeException(nameof(flatStart), $"'{name}': the slice has {outer * run} elements, not [{flatStart}, {flatStart + flatCount})");
        var result = empty(flatCount, e.Type);
        // The slice is `outer` runs of `run` elements; run o starts at file element (o · shape[dim] + start) · inner.
        for (long at = 0; at < flatCount;)
        {
            long o = (flatStart + at) / run, within = (flatStart + at) % run, n = Math.Min(run - within, flatCount - at);
            long fileElement = (o * shape[dim] + start) * inner + within;
            ReadRun(e.Begin + fileElement * elementSize, result, at, n);
            at += n;
        }
        return result;
    }

    private SafeTensorEntry Entry(string name) =>
        entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"weights file '{Path}' has no tensor '{name}'");

    /// <summary>Reads <paramref name="count"/> elements at byte <paramref name="fileOffset"/> of the data section into flat[at..].</summary>
    private void ReadRun(long fileOffset, Tensor target, long at, long count)
    {
        stream.Seek(dataStart + fileOffset, SeekOrigin.Begin);
        using var flat = target.view(-1);
        long chunk = (1L << 30) / flat.element_size();
        for (long s = 0; s < count; s += chunk)
        {
            using var part = flat.narrow(0, at + s, Math.Min(chunk, count - s));
            stream.ReadExactly(part.bytes);
            BytesRead += part.numel() * part.element_size();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => stream.Dispose();
}
