using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>One key of a section: how it is read into <typeparamref name="T"/> and written back.</summary>
internal abstract class Field<T>(string key)
{
    /// <summary>The canonical (current DeepSpeed) key.</summary>
    public string Key { get; } = key;
    /// <summary>Other names accepted silently (DeepSpeed's pydantic aliases).</summary>
    public List<string> Aliases { get; } = [];
    /// <summary>Old names accepted with a deprecation warning.</summary>
    public List<string> DeprecatedNames { get; } = [];
    /// <summary>Whether the string "auto" means "use the default" for this key (false when "auto" is a real value).</summary>
    public bool AutoMeansDefault { get; set; } = true;
    /// <summary>The keys below this one (nested sections), or null for a leaf key.</summary>
    public virtual IEnumerable<SchemaKey>? ChildKeys(string path) => null;
    /// <summary>The accepted values of a numeric leaf key (null for other keys).</summary>
    public virtual NumericRange? Range => null;

    public abstract T Read(T target, JsonNode? value, ReadContext ctx, string path);
    /// <summary>The normalised value for <c>ToJson</c> (null = omit).</summary>
    public abstract JsonNode? Write(T source);

    public Field<T> Alias(params string[] names) { Aliases.AddRange(names); return this; }
    public Field<T> Deprecated(params string[] names) { DeprecatedNames.AddRange(names); return this; }
    public Field<T> AutoIsValue() { AutoMeansDefault = false; return this; }
}

/// <summary>A scalar key: a <see cref="ValueKind{V}"/> plus getter/setter and an optional extra check.</summary>
internal sealed class ValueField<T, V>(string key, ValueKind<V> kind, Func<T, V> get, Func<T, V, T> set,
    Action<V, string>? check = null) : Field<T>(key)
{
    public override T Read(T target, JsonNode? value, ReadContext ctx, string path)
    {
        var v = kind.Read(value, path);
        check?.Invoke(v, path);
        return set(target, v);
    }

    public override JsonNode? Write(T source) => kind.Write(get(source));
    public override NumericRange? Range => kind.Range;
}

/// <summary>A nested section read with its own schema.</summary>
internal sealed class SectionField<T, S>(string key, SectionSchema<S> schema, Func<T, S> get, Func<T, S, T> set) : Field<T>(key)
{
    public override T Read(T target, JsonNode? value, ReadContext ctx, string path) => set(target, schema.Read(value, ctx, path));
    public override JsonNode? Write(T source) => schema.Write(get(source));
    public override IEnumerable<SchemaKey> ChildKeys(string path) => schema.Keys(path);
}

/// <summary>A key with hand-written reading (e.g. <c>betas</c>, the optimizer and scheduler sections).</summary>
internal sealed class CustomField<T>(string key, Func<T, JsonNode?, ReadContext, string, T> read, Func<T, JsonNode?> write,
    Func<string, IEnumerable<SchemaKey>>? children = null) : Field<T>(key)
{
    private NumericRange? range;
    public override T Read(T target, JsonNode? value, ReadContext ctx, string path) => read(target, value, ctx, path);
    public override JsonNode? Write(T source) => write(source);
    public override IEnumerable<SchemaKey>? ChildKeys(string path) => children?.Invoke(path);
    public override NumericRange? Range => range;

    /// <summary>Declares the range the hand-written reader enforces (for messages, docs and the range test).</summary>
    public CustomField<T> WithRange(NumericRange r) { range = r; return this; }
}

/// <summary>One key the reader accepts: its canonical dotted path and, for numeric keys, the accepted range.</summary>
/// <param name="Path">e.g. <c>zero_optimization.reduce_bucket_size</c>.</param>
/// <param name="Range">The accepted values, or null for a non-numeric key.</param>
internal sealed record SchemaKey(string Path, NumericRange? Range);

/// <summary>Whether a raw config value asks for something.</summary>
internal static class Activity
{
    /// <summary>false/null/0/""/{}/[] or an object whose "enabled" is false or "auto" count as inactive.</summary>
    public static bool IsActive(JsonNode? n) => n?.GetValueKind() switch
    {
        null or JsonValueKind.Null or JsonValueKind.False => false,
        JsonValueKind.True => true,
        JsonValueKind.Number => Kinds.Element(n).GetDouble() != 0,
        JsonValueKind.String => n.GetValue<string>().Length > 0,
        JsonValueKind.Array => n.AsArray().Count > 0,
        JsonValueKind.Object => n.AsObject().TryGetPropertyValue("enabled", out var e)
            ? e?.GetValueKind() == JsonValueKind.True
            : n.AsObject().Count > 0,
        _ => true,
    };
}
