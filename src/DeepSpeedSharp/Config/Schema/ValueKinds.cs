using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>How one JSON value is read into a .NET value (and written back for <c>ToJson</c>).</summary>
internal sealed class ValueKind<V>(Func<JsonNode?, string, V> read, Func<V, JsonNode?> write)
{
    public V Read(JsonNode? node, string path) => read(node, path);
    public JsonNode? Write(V value) => write(value);
}

/// <summary>The value kinds used by the schemas. Every failure names the key path, the value and what is accepted.</summary>
internal static class Kinds
{
    public static readonly ValueKind<bool> Bool = new((n, p) => ReadBool(n, p), v => JsonValue.Create(v));
    public static readonly ValueKind<string?> OptionalString = new((n, p) => n is null ? null : ReadString(n, p), v => v is null ? null : JsonValue.Create(v));
    public static readonly ValueKind<string> String = new((n, p) => ReadString(n, p), v => JsonValue.Create(v));
    public static readonly ValueKind<string?> Dtype = new((n, p) => n is null ? null : NormaliseDtype(ReadString(n, p), p), v => v is null ? null : JsonValue.Create(v));

    public static readonly ValueKind<IReadOnlyList<string>> StringList = new((n, p) =>
    {
        if (n is not JsonArray a) throw Expected(p, "a list of strings", n);
        return a.Select((x, i) => ReadString(x, $"{p}[{i}]")).ToList();
    }, v => new JsonArray(v.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()));

    public static ValueKind<int> Int(long min = int.MinValue, long max = int.MaxValue) =>
        new((n, p) => (int)ReadLong(n, p, min, Math.Min(max, int.MaxValue)), v => JsonValue.Create(v));

    public static ValueKind<int?> OptionalInt(long min = int.MinValue) =>
        new((n, p) => n is null ? null : (int)ReadLong(n, p, min, int.MaxValue), v => v is null ? null : JsonValue.Create(v.Value));

    public static ValueKind<long> Long(long min = long.MinValue) =>
        new((n, p) => ReadLong(n, p, min, long.MaxValue), v => JsonValue.Create(v));

    public static ValueKind<double> Double(double min = double.NegativeInfinity, double max = double.PositiveInfinity) =>
        new((n, p) => ReadDouble(n, p, min, max), v => JsonValue.Create(v));

    public static ValueKind<double?> OptionalDouble(double min = double.NegativeInfinity) =>
        new((n, p) => n is null ? null : ReadDouble(n, p, min, double.PositiveInfinity), v => v is null ? null : JsonValue.Create(v.Value));

    /// <summary>A string from a fixed set; matching is case-insensitive and the value is normalised to the listed spelling.</summary>
    public static ValueKind<string> OneOf(params string[] allowed) => new((n, p) =>
    {
        var s = ReadString(n, p);
        return allowed.FirstOrDefault(a => string.Equals(a, s, StringComparison.OrdinalIgnoreCase))
               ?? throw new DeepSpeedConfigException($"{p}: '{s}' is not accepted; expected one of {string.Join(", ", allowed.Select(a => $"'{a}'"))}");
    }, v => JsonValue.Create(v));

    public static string Describe(JsonNode? n)
    {
        if (n is null) return "null";
        var text = n.ToJsonString();
        var kind = n.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "a list",
            _ => "a value",
        };
        return $"{kind} {(text.Length > 60 ? text[..57] + "..." : text)}";
    }

    public static DeepSpeedConfigException Expected(string path, string what, JsonNode? got) =>
        new($"{path}: expected {what}, got {Describe(got)}");

    public static bool ReadBool(JsonNode? n, string path) =>
        n?.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Expected(path, "true or false", n),
        };

    public static string ReadString(JsonNode? n, string path) =>
        n?.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : throw Expected(path, "a string", n);

    public static long ReadLong(JsonNode? n, string path, long min, long max)
    {
        if (n?.GetValueKind() != JsonValueKind.Number) throw Expected(path, "an integer", n);
        var element = Element(n);
        long value;
        if (!element.TryGetInt64(out value))
        {
            // DeepSpeed configs commonly write sizes as 5e8; accept integral floating-point numbers.
            var d = element.GetDouble();
            if (double.IsInfinity(d) || d >= 9.2233720368547758E18 || d < -9.2233720368547758E18)
                throw new DeepSpeedConfigException($"{path}: {element.GetRawText()} is out of range; expected an integer between {min} and {max}");
            if (d != Math.Floor(d)) throw Expected(path, "an integer", n);
            value = (long)d;
        }
        if (value < min || value > max)
            throw new DeepSpeedConfigException(value < min && min == 0
                ? $"{path}: must be ≥ 0, got {value}"
                : value < min && min == 1 ? $"{path}: must be a positive integer, got {value}"
                : $"{path}: {value} is out of range; expected an integer between {min} and {max}");
        return value;
    }

    public static double ReadDouble(JsonNode? n, string path, double min, double max)
    {
        if (n?.GetValueKind() != JsonValueKind.Number) throw Expected(path, "a number", n);
        var d = Element(n).GetDouble();
        if (double.IsInfinity(d)) throw new DeepSpeedConfigException($"{path}: {n.ToJsonString()} is too large for a finite number");
        if (d < min || d > max)
            throw new DeepSpeedConfigException($"{path}: {d.ToString(CultureInfo.InvariantCulture)} is out of range; expected a number between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}");
        return d;
    }

    /// <summary>The JSON element behind a value node (nodes built in code, e.g. by migrations, are converted).</summary>
    public static JsonElement Element(JsonNode n) =>
        n is JsonValue v && v.TryGetValue<JsonElement>(out var e) ? e : JsonSerializer.SerializeToElement(n);

    /// <summary>DeepSpeed's dtype spellings (DtypeEnum) → "fp32" | "fp16" | "bf16".</summary>
    public static string NormaliseDtype(string s, string path) => s.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" or "torch.float32" or "torch.float" => "fp32",
        "fp16" or "float16" or "half" or "torch.float16" or "torch.half" => "fp16",
        "bf16" or "bfloat16" or "bfloat" or "torch.bfloat16" => "bf16",
        _ => throw new DeepSpeedConfigException($"{path}: '{s}' is not a supported dtype; expected 'fp32', 'fp16' or 'bf16' (or float32, float16, half, bfloat16)"),
    };
}
