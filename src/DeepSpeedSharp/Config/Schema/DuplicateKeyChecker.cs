using System.Text;
using System.Text.Json;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// Walks the JSON once with <see cref="Utf8JsonReader"/> and rejects duplicate keys (DeepSpeed raises on them too),
/// naming the key and the object path where it repeats (all of them at once). Also turns syntax errors into config errors.
/// </summary>
internal static class DuplicateKeyChecker
{
    public static void Check(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions
        {
            CommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            MaxDepth = 256,
        });
        // One frame per open container: its path and (for objects) the keys seen so far.
        var frames = new Stack<(string Path, HashSet<string>? Keys)>();
        string? pendingKey = null;
        var arrayIndex = new Stack<int>();
        var duplicates = new List<string>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        var path = ChildPath(frames, pendingKey, arrayIndex);
                        pendingKey = null;
                        frames.Push((path, reader.TokenType == JsonTokenType.StartObject ? new HashSet<string>(StringComparer.Ordinal) : null));
                        if (reader.TokenType == JsonTokenType.StartArray) arrayIndex.Push(0);
                        break;
                    case JsonTokenType.EndObject:
                        frames.Pop();
                        AdvanceArray(frames, arrayIndex);
                        break;
                    case JsonTokenType.EndArray:
                        frames.Pop();
                        arrayIndex.Pop();
                        AdvanceArray(frames, arrayIndex);
                        break;
                    case JsonTokenType.PropertyName:
                        var key = reader.GetString()!;
                        var frame = frames.Peek();
                        if (!frame.Keys!.Add(key))
                            duplicates.Add($"duplicate key '{key}' {ReadContext.Where(frame.Path)} (DeepSpeed rejects duplicate keys too; keep one)");
                        pendingKey = key;
                        break;
                    default:
                        pendingKey = null;
                        AdvanceArray(frames, arrayIndex);
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            throw DeepSpeedConfigException.InvalidJson(e);
        }
        if (duplicates.Count > 0) throw DeepSpeedConfigException.Of(duplicates);
    }

    private static string ChildPath(Stack<(string Path, HashSet<string>? Keys)> frames, string? key, Stack<int> arrayIndex)
    {
        if (frames.Count == 0) return "";
        var parent = frames.Peek();
        if (parent.Keys != null) return ReadContext.Join(parent.Path, key ?? "");
        return $"{parent.Path}[{arrayIndex.Peek()}]";
    }

    private static void AdvanceArray(Stack<(string Path, HashSet<string>? Keys)> frames, Stack<int> arrayIndex)
    {
        if (frames.Count > 0 && frames.Peek().Keys == null) arrayIndex.Push(arrayIndex.Pop() + 1);
    }
}
