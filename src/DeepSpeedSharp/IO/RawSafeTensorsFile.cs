using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace DeepSpeedSharp.IO;

/// <summary>
/// A safetensors file read as bytes, without torch: its header (each tensor's dtype, shape and place in the data
/// section) and any byte range of a tensor's data. What <c>dss checkpoint export</c> reads checkpoints with, so that the
/// installed tool, which carries no libtorch, can run it. Errors name the file and what is wrong with it.
/// </summary>
internal sealed class RawSafeTensorsFile : IDisposable
{
    private readonly FileStream stream;
    private readonly long dataStart;
    private readonly Dictionary<string, (SafeTensorsLayout Layout, long Begin)> entries = new(StringComparer.Ordinal);

    /// <summary>Opens <paramref name="path"/> and reads its header (with <see cref="SafeTensorsReader"/>, whose header checks apply).</summary>
    public RawSafeTensorsFile(string path)
    {
        Path = path;
        using (var header = new SafeTensorsReader(path))
            foreach (var e in header.Entries.Values) entries[e.Name] = (new SafeTensorsLayout(e.Name, e.Type, e.Shape), e.Begin);
        stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> length = stackalloc byte[8];
            stream.ReadExactly(length);
            dataStart = 8 + BinaryPrimitives.ReadInt64LittleEndian(length);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The file's tensors in the order of their data.</summary>
    public IEnumerable<SafeTensorsLayout> Tensors => entries.Values.OrderBy(e => e.Begin).Select(e => e.Layout);

    /// <summary>The tensor <paramref name="name"/>'s layout, or null when the file has none of that name.</summary>
    public SafeTensorsLayout? Find(string name) => entries.TryGetValue(name, out var e) ? e.Layout : null;

    /// <summary>
    /// Fills <paramref name="destination"/> with the bytes of tensor <paramref name="name"/>'s data from byte
    /// <paramref name="byteOffset"/> of that tensor on.
    /// </summary>
    public void ReadBytes(string name, long byteOffset, Span<byte> destination)
    {
        if (!entries.TryGetValue(name, out var e)) throw new KeyNotFoundException($"safetensors file '{Path}' has no tensor '{name}'");
        if (byteOffset < 0 || byteOffset + destination.Length > e.Layout.Bytes)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"bytes [{byteOffset}, {byteOffset + destination.Length}) are outside tensor '{name}' of '{Path}' ({e.Layout.Bytes} bytes)");
        long at = dataStart + e.Begin + byteOffset;
        if (stream.Position != at) stream.Seek(at, SeekOrigin.Begin);
        stream.ReadExactly(destination);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with elements of the float32 tensor <paramref name="name"/> from element
    /// <paramref name="elementOffset"/> on (read in pieces of at most 1 GiB).
    /// </summary>
    public void ReadFloats(string name, long elementOffset, Span<float> destination)
    {
        const int chunk = 1 << 28;
        for (int done = 0; done < destination.Length; done += chunk)
        {
            var part = destination.Slice(done, Math.Min(chunk, destination.Length - done));
            ReadBytes(name, (elementOffset + done) * sizeof(float), MemoryMarshal.AsBytes(part));
        }
    }

    /// <inheritdoc/>
    public void Dispose() => stream.Dispose();
}
