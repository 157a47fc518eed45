using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>How one JSON value is read into a .NET value (and written back for <c>ToJson</c>).</summary>
internal sealed class ValueKind<V>(Func<JsonNode?, string, V> read, Func<V, JsonNode?> write, NumericRange? range = null)
{
    /// <summary>The accepted values of a numeric kind (null for booleans, strings, lists).</summary>
    public NumericRange? Range => range;
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

    // Every numeric kind takes its lower bound explicitly: a new key cannot be added without deciding its range.

    /// <summary>An integer in [min, max] (max at most int.MaxValue); <paramref name="text"/> replaces the generated description.</summary>
    public static ValueKind<int> Int(long min, long max = int.MaxValue, string? text = null)
    {
        var r = NumericRange.Int(min, Math.Min(max, int.MaxValue)) with { Text = text };
        return new((n, p) => (int)ReadLong(n, p, r), v => JsonValue.Create(v), r);
    }

    public static ValueKind<int?> OptionalInt(long min)
    {
        var r = NumericRange.Int(min, int.MaxValue);
        return new((n, p) => n is null ? null : (int)ReadLong(n, p, r), v => v is null ? null : JsonValue.Create(v.Value), r);
    }

    /// <summary>A list of integers, each at least <paramref name="min"/> (null when absent).</summary>
    public static ValueKind<IReadOnlyList<int>?> OptionalIntList(long min)
    {
        var r = NumericRange.Int(min, int.MaxValue);
        return new((n, p) =>
        {
            if (n is null) return null;
            if (n is not JsonArray a) throw Expected(p, "a list of integers", n);
            return a.Select((x, i) => (int)ReadLong(x, $"{p}[{i}]", r)).ToList();
        }, v => v is null ? null : new JsonArray(v.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()));
    }

    public static ValueKind<long> Long(long min)
    {
        var r = NumericRange.Int(min, long.MaxValue);
        return new((n, p) => ReadLong(n, p, r), v => JsonValue.Create(v), r);
    }

    public static ValueKind<double> Double(double min, double max = double.PositiveInfinity, bool minExclusive = false)
    {
        var r = NumericRange.Real(min, max, minExclusive);
        return new((n, p) => ReadDouble(n, p, r), v => JsonValue.Create(v), r);
    }

    public static ValueKind<double?> OptionalDouble(double min, double max = double.PositiveInfinity)
    {
        var r = NumericRange.Real(min, max);
        return new((n, p) => n is null ? null : ReadDouble(n, p, r), v => v is null ? null : JsonValue.Create(v.Value), r);
    }

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

    /// <summary>An integer inside <paramref name="range"/>; integral floating-point spellings (5e8) are accepted.</summary>
    public static long ReadLong(JsonNode? n, string path, NumericRange range)
    {
        if (n?.GetValueKind() != JsonValueKind.Number) throw Expected(path, range.Describe(), n);
        var element = Element(n);
        var raw = element.GetRawText();
        if (!element.TryGetInt64(out var value))
        {
            // DeepSpeed configs commonly write sizes as 5e8; accept integral floating-point numbers.
            var d = element.GetDouble();
            if (double.IsInfinity(d) || d >= 9.2233720368547758E18 || d < -9.2233720368547758E18)
                throw range.Error(path, raw, aboveTypeLimit: true);
            if (d != Math.Floor(d)) throw range.Error(path, raw);
            value = (long)d;
        }
        if (!range.Contains(value)) throw range.Error(path, raw, aboveTypeLimit: value > range.Max);
        return value;
    }

    /// <summary>A finite number inside <paramref name="range"/>.</summary>
    public static double ReadDouble(JsonNode? n, string path, NumericRange range)
    {
        if (n?.GetValueKind() != JsonValueKind.Number) throw Expected(path, range.Describe(), n);
        var d = Element(n).GetDouble();
        if (double.IsInfinity(d)) throw new DeepSpeedConfigException($"{path}: {n.ToJsonString()} is too large for a finite number; expected {range.Describe()}");
        if (!range.Contains(d)) throw range.Error(path, Element(n).GetRawText());
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
