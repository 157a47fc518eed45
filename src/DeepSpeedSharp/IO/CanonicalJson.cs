using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.IO;

/// <summary>
/// One text for one JSON value, whatever tool last wrote it: object keys sorted (ordinal), no whitespace, strings
/// escaped one way, and numbers written from their value — <c>1E-08</c>, <c>1e-8</c> and <c>0.00000001</c> are one
/// number, as are <c>2</c> and <c>2.0</c>. What <c>jq .</c>, <c>jq -S .</c> or Python's <c>json.dump(indent=2)</c> do to
/// a file leaves its canonical text unchanged; a changed value changes it.
/// </summary>
internal static class CanonicalJson
{
    /// <summary>The canonical text of <paramref name="node"/> (<c>null</c> for a JSON null).</summary>
    public static string Write(JsonNode? node)
    {
        var sb = new StringBuilder();
        Append(sb, node);
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, JsonNode? node)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject o:
                sb.Append('{');
                bool first = true;
                foreach (var (key, value) in o.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (!first) sb.Append(',');
                    first = false;
                    sb.Append(JsonSerializer.Serialize(key)).Append(':');
                    Append(sb, value);
                }
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (int i = 0; i < a.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    Append(sb, a[i]);
                }
                sb.Append(']');
                break;
            default:
                AppendValue(sb, node.AsValue());
                break;
        }
    }

    private static void AppendValue(StringBuilder sb, JsonValue v)
    {
        switch (v.GetValueKind())
        {
            case JsonValueKind.String: sb.Append(JsonSerializer.Serialize(v.GetValue<string>())); break;
            case JsonValueKind.True: sb.Append("true"); break;
            case JsonValueKind.False: sb.Append("false"); break;
            case JsonValueKind.Null: sb.Append("null"); break;
            case JsonValueKind.Number: sb.Append(Number(v.ToJsonString())); break;
            default: sb.Append(v.ToJsonString()); break;
        }
    }

    /// <summary>
    /// A number's canonical text: an integer that fits 64 bits as itself; anything else by its double value, as an
    /// integer when it is one below 2^53, else in round-trip form.
    /// </summary>
    internal static string Number(string text)
    {
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
            return l.ToString(CultureInfo.InvariantCulture);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return text;
        if (d == Math.Floor(d) && Math.Abs(d) < 9007199254740992.0)
            return ((long)d).ToString(CultureInfo.InvariantCulture);
        return d.ToString("R", CultureInfo.InvariantCulture);
    }
}
