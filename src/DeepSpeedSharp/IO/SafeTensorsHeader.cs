using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DeepSpeedSharp.IO;

/// <summary>One tensor as a safetensors header describes it: name, dtype and shape (the data follows in header order).</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="Type">Its element type.</param>
/// <param name="Shape">Its shape (empty for a scalar).</param>
internal sealed record SafeTensorsLayout(string Name, ScalarType Type, long[] Shape)
{
    /// <summary>Elements: the product of <see cref="Shape"/> (1 for a scalar).</summary>
    public long Numel => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of its data.</summary>
    public long Bytes => Numel * SafeTensors.ElementSize(Type);
}

/// <summary>
/// Encodes the start of a safetensors file — the 8-byte little-endian header length, the JSON header (optional
/// <c>__metadata__</c>, then each tensor's dtype, shape and data offsets, in the order given) and spaces up to a multiple
/// of 8 bytes — the one encoding every writer of this library uses, so files written from tensors and from raw bytes are
/// byte-identical.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>The header bytes for <paramref name="tensors"/> (already in file order) and <paramref name="metadata"/>.</summary>
    public static byte[] Encode(IEnumerable<SafeTensorsLayout> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Bytes;
            header[t.Name] = new JsonObject
            {
                ["dtype"] = SafeTensors.DTypeName(t.Type),
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)JsonValue.Create(d)).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        var result = new byte[8 + json.Length + pad];
        BinaryPrimitives.WriteInt64LittleEndian(result, json.Length + pad);
        json.CopyTo(result, 8);
        result.AsSpan(8 + json.Length).Fill((byte)' ');
        return result;
    }
}
