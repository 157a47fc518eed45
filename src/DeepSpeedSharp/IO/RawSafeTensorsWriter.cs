namespace DeepSpeedSharp.IO;

/// <summary>
/// Writes a safetensors file from bytes, without torch, one tensor at a time: the header first (the layouts are known
/// before any data is), then each tensor's data from a callback, so a file of any size is written holding no more than
/// the callback does. Byte-identical to <see cref="SafeTensors.Write"/> of the same tensors.
/// </summary>
internal static class RawSafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> (sorted here by name, as <see cref="SafeTensors.Write"/> sorts) to
    /// <paramref name="path"/>; <paramref name="writeData"/> writes each tensor's bytes to the stream, exactly
    /// <see cref="SafeTensorsLayout.Bytes"/> of them.
    /// </summary>
    public static void Write(string path, IEnumerable<SafeTensorsLayout> tensors, IReadOnlyDictionary<string, string>? metadata,
        Action<SafeTensorsLayout, Stream> writeData)
    {
        var items = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(SafeTensorsHeader.Encode(items, metadata));
        foreach (var t in items)
        {
            long before = stream.Position;
            writeData(t, stream);
            if (stream.Position - before != t.Bytes)
                throw new InvalidOperationException($"writing '{path}': tensor '{t.Name}' got {stream.Position - before} bytes of data, its header says {t.Bytes}");
        }
    }
}
