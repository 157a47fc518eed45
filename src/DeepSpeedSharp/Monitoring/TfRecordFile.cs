using System.Buffers.Binary;

namespace DeepSpeedSharp.Monitoring;

/// <summary>
/// TFRecord framing, the container of TensorBoard event files: each record is
/// <c>uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)</c>, little-endian.
/// </summary>
public static class TfRecordFile
{
    /// <summary>Appends one framed record to <paramref name="stream"/>.</summary>
    public static void WriteRecord(Stream stream, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(data));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
    }

    /// <summary>
    /// Reads every record of a file, checking both CRCs of each. Throws <see cref="InvalidDataException"/> naming
    /// the record index and byte offset when a length is truncated or a CRC does not match.
    /// </summary>
    public static List<byte[]> ReadRecords(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var records = new List<byte[]>();
        int offset = 0;
        while (offset < bytes.Length)
        {
            int index = records.Count;
            if (bytes.Length - offset < 12) throw new InvalidDataException($"{path}: record {index} at byte {offset}: truncated header ({bytes.Length - offset} bytes left, 12 needed)");
            var header = bytes.AsSpan(offset, 12);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header[8..]) != Crc32C.Masked(header[..8]))
                throw new InvalidDataException($"{path}: record {index} at byte {offset}: length CRC mismatch");
            if (length > (ulong)(bytes.Length - offset - 16))
                throw new InvalidDataException($"{path}: record {index} at byte {offset}: length {length} runs past the end of the file");
            var data = bytes.AsSpan(offset + 12, (int)length);
            uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 12 + (int)length, 4));
            if (stored != Crc32C.Masked(data)) throw new InvalidDataException($"{path}: record {index} at byte {offset}: data CRC mismatch");
            records.Add(data.ToArray());
            offset += 16 + (int)length;
        }
        return records;
    }
}
