using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>The envelope of the <c>optimizer</c> and <c>scheduler</c> sections: a <c>type</c> and its <c>params</c> object.</summary>
internal sealed record TypeAndParams(string? Type = null, JsonNode? Params = null)
{
    /// <summary>Reads the envelope at <paramref name="path"/>; null when the section is absent.</summary>
    public static TypeAndParams? Read(JsonNode? node, ReadContext ctx, string path)
    {
        if (node is null) return null;
        if (node is not JsonObject obj) throw Kinds.Expected(path, "an object {\"type\": ..., \"params\": {...}}", node);
        return new SectionSchema<TypeAndParams>(() => new())
            .Add(new CustomField<TypeAndParams>("type", (e, n, _, p) => e with { Type = n is null ? null : Kinds.ReadString(n, p) }, _ => null).AutoIsValue(),
                 new CustomField<TypeAndParams>("params", (e, n, _, _) => e with { Params = n }, _ => null).AutoIsValue())
            .Read(obj, ctx, path);
    }
}
