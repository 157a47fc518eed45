using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// The generic reader of one config section: a table of <see cref="Field{T}"/>s and <see cref="KnownKey"/>s.
/// It resolves aliases and deprecated names, handles "auto", rejects unknown keys with a "did you mean" suggestion,
/// and writes the normalised section back to JSON.
/// </summary>
internal sealed class SectionSchema<T>(Func<T> create)
{
    private readonly List<Field<T>> _fields = [];
    private readonly Dictionary<string, (Field<T> Field, bool Deprecated)> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, KnownKey> _known = new(StringComparer.Ordinal);

    /// <summary>"auto" at this level warns (top level) instead of only being recorded (inside sections).</summary>
    public bool WarnOnAuto { get; init; }
    /// <summary>Checks run after all keys are read (within-section consistency).</summary>
    public Func<T, JsonObject, ReadContext, string, T>? After { get; init; }

    public IEnumerable<string> AllNames => _byName.Keys.Concat(_known.Keys);

    public SectionSchema<T> Add(Field<T> field)
    {
        _fields.Add(field);
        Register(field.Key, field, false);
        foreach (var a in field.Aliases) Register(a, field, false);
        foreach (var d in field.DeprecatedNames) Register(d, field, true);
        return this;
    }

    public SectionSchema<T> Add(params Field<T>[] fields)
    {
        foreach (var f in fields) Add(f);
        return this;
    }

    public SectionSchema<T> Known(KnownKeyPolicy policy, string reason, params string[] keys)
    {
        foreach (var k in keys) _known.Add(k, new KnownKey(k, policy, reason));
        return this;
    }

    private void Register(string name, Field<T> field, bool deprecated)
    {
        if (!_byName.TryAdd(name, (field, deprecated))) throw new InvalidOperationException($"schema lists '{name}' twice");
    }

    public T Read(JsonNode? node, ReadContext ctx, string path)
    {
        if (node is not JsonObject obj) throw Kinds.Expected(path.Length == 0 ? "config" : path, "an object", node);
        var value = create();
        var usedName = new Dictionary<Field<T>, string>();
        foreach (var (key, child) in obj)
        {
            var full = ReadContext.Join(path, key);
            if (key.StartsWith('_'))
            {
                ctx.CommentKeys.Add(full);
                continue;
            }
            if (_byName.TryGetValue(key, out var entry))
            {
                var field = entry.Field;
                if (usedName.TryGetValue(field, out var other))
                    throw new DeepSpeedConfigException($"both '{other}' and '{key}' are given {ReadContext.Where(path)}; they are the same setting — keep only '{field.Key}'");
                usedName[field] = key;
                if (entry.Deprecated)
                    ctx.Warnings.Add($"'{full}' is deprecated; use '{ReadContext.Join(path, field.Key)}' (value migrated)");
                if (field.AutoMeansDefault && child?.GetValueKind() == JsonValueKind.String && child.GetValue<string>() == "auto")
                {
                    ctx.AutoKeys.Add(full);
                    if (WarnOnAuto) ctx.Warnings.Add($"'{full}' is \"auto\"; using the default {field.Write(create())?.ToJsonString() ?? "(none)"}");
                    continue;
                }
                value = field.Read(value, child, ctx, full);
                // A field without effect is reported when it asks for something: an enabled/non-empty section, or a
                // scalar different from its default.
                if (field.NotImplemented && (child is JsonObject ? KnownKey.IsActive(child)
                        : !JsonNode.DeepEquals(field.Write(value), field.Write(create()))))
                    ctx.Unimplemented.Add(full);
            }
            else if (_known.TryGetValue(key, out var known))
            {
                if (known.Policy == KnownKeyPolicy.RejectWhenActive && KnownKey.IsActive(child))
                    throw new DeepSpeedConfigException($"'{full}' is not supported by DeepSpeedSharp: {known.Reason}; remove it or disable it");
                if (known.Policy == KnownKeyPolicy.Ignore && KnownKey.IsActive(child)) ctx.Unimplemented.Add(full);
            }
            else
            {
                var suggestion = KeySuggester.Suggest(key, AllNames);
                throw new DeepSpeedConfigException($"unknown key '{key}' {ReadContext.Where(path)}"
                    + (suggestion != null ? $"; did you mean '{suggestion}'?"
                       : _fields.Count <= 12 ? $"; accepted keys: {string.Join(", ", _fields.Select(f => f.Key))}"
                       : " (not a DeepSpeed key; see docs/config.md for the accepted keys)"));
            }
        }
        return After != null ? After(value, obj, ctx, path) : value;
    }

    public JsonObject Write(T value)
    {
        var obj = new JsonObject();
        foreach (var f in _fields)
        {
            var v = f.Write(value);
            if (v != null) obj[f.Key] = v;
        }
        return obj;
    }
}
