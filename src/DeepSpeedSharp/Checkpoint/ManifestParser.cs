using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Reads the text of <c>checkpoint.json</c> into a <see cref="CheckpointManifest"/>. Every error names the file and
/// the field: bad JSON (the field being read where the syntax breaks, with line and byte), a missing required field, or
/// a value of the wrong type (<c>field 'global_steps': expected an integer, got a string "7"</c>).
/// </summary>
internal static partial class ManifestParser
{
    private static readonly string[] Required = ["format", "version", "tag", "world_size", "zero_stage", "global_steps", "global_samples", "files"];
    private static readonly string[] RequiredSinceVersion2 = ["model_parallel_size", "shards"];
    private static readonly string[] RequiredFileFields = ["name", "bytes", "sha256"];

    /// <summary>The manifest's JSON object; bad JSON names the field where the syntax breaks.</summary>
    public static JsonObject Parse(string path, string text)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            var field = FieldAtError(text);
            var where = e.LineNumber is { } line ? $"line {line + 1}, byte {(e.BytePositionInLine ?? 0) + 1}" : "at its end";
            throw new InvalidDataException($"checkpoint manifest '{path}' is not valid JSON: {(field != null ? $"field '{field}', " : "")}{where} ({FirstSentence(e.Message)})", e);
        }
        return node as JsonObject ?? throw new InvalidDataException($"checkpoint manifest '{path}': expected a JSON object at the top level, got {Describe(node)}");
    }

    /// <summary>The manifest; a missing required field or a value of the wrong type names the field.</summary>
    public static CheckpointManifest Deserialize(string path, string text, JsonObject raw)
    {
        var required = raw["version"] is JsonValue v && v.TryGetValue<int>(out var version) && version >= 2 ? Required.Concat(RequiredSinceVersion2) : Required;
        foreach (var field in required)
            if (!raw.ContainsKey(field)) throw Missing(path, field);
        if (raw["files"] is JsonArray files)
            for (int i = 0; i < files.Count; i++)
                foreach (var field in RequiredFileFields)
                    if (files[i] is JsonObject f && !f.ContainsKey(field)) throw Missing(path, $"files[{i}].{field}");
        try
        {
            return JsonSerializer.Deserialize<CheckpointManifest>(text, CheckpointManifest.Json)
                   ?? throw new InvalidDataException($"checkpoint manifest '{path}' is the JSON null");
        }
        catch (JsonException e)
        {
            var field = e.Path is { Length: > 1 } p ? p.TrimStart('$').TrimStart('.') : "(top level)";
            var got = e.Path is null ? null : Find(raw, e.Path);
            throw new InvalidDataException($"checkpoint manifest '{path}': field '{field}': expected {Expected(e.Message)}, got {Describe(got)}", e);
        }
    }

    private static InvalidDataException Missing(string path, string field) =>
        new($"checkpoint manifest '{path}': field '{field}' is missing (an incomplete or hand-edited manifest)");

    /// <summary>The dotted path of the property being read when the JSON syntax breaks, or null before the first one.</summary>
    private static string? FieldAtError(string text)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(text), new JsonReaderOptions { AllowTrailingCommas = false });
        var containers = new Stack<string>();
        string? current = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        var parent = containers.Count > 0 ? containers.Peek() : "";
                        current = parent.Length == 0 ? reader.GetString() : $"{parent}.{reader.GetString()}";
                        break;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        containers.Push(current ?? "");
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        current = containers.Count > 0 ? containers.Pop() : null;
                        break;
                }
            }
        }
        catch (JsonException)
        {
        }
        return string.IsNullOrEmpty(current) ? null : current;
    }

    /// <summary>The node at a System.Text.Json path such as <c>$.files[0].bytes</c>, or null.</summary>
    private static JsonNode? Find(JsonNode root, string path)
    {
        JsonNode? node = root;
        foreach (Match m in PathSegment().Matches(path))
        {
            if (node is null) return null;
            node = m.Groups["name"].Success ? (node as JsonObject)?[m.Groups["name"].Value]
                : node is JsonArray a && int.Parse(m.Groups["index"].Value) is var i && i < a.Count ? a[i] : null;
        }
        return node;
    }

    [GeneratedRegex(@"\.(?<name>[A-Za-z0-9_]+)|\[(?<index>\d+)\]")]
    private static partial Regex PathSegment();

    [GeneratedRegex(@"converted to (?<type>[^ ]+)\. Path")]
    private static partial Regex TargetType();

    private static string Expected(string message)
    {
        var type = TargetType().Match(message) is { Success: true } m ? m.Groups["type"].Value : "";
        if (type.Contains("Int64") || type.Contains("Int32")) return "an integer";
        if (type.Contains("Double")) return "a number";
        if (type.Contains("Boolean")) return "true or false";
        if (type.Contains("List`1") || type.EndsWith("[]", StringComparison.Ordinal)) return "a list";
        if (type.Contains("System.String")) return "a string";
        return type.Length > 0 ? "an object" : $"a valid value ({FirstSentence(message)})";
    }

    private static string Describe(JsonNode? n)
    {
        if (n is null) return "null";
        var text = n.ToJsonString();
        if (text.Length > 40) text = text[..37] + "...";
        return n.GetValueKind() switch
        {
            JsonValueKind.String => $"a string {text}",
            JsonValueKind.Number => $"the number {text}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {text}",
            JsonValueKind.Array => "a list",
            JsonValueKind.Object => "an object",
            _ => text,
        };
    }

    private static string FirstSentence(string message)
    {
        var i = message.IndexOf(". ", StringComparison.Ordinal);
        return i > 0 ? message[..i] : message.TrimEnd('.');
    }
}
