using DeepSpeedSharp.Config.Keys;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// The generic reader of one config section: a table of <see cref="Field{T}"/>s. It resolves aliases and deprecated
/// names, handles "auto", applies <see cref="ConfigKeyTable"/> (rejected values are errors, keys without effect are
/// recorded; DeepSpeed keys the table lists without a field are accepted the same way), rejects unknown keys with a
/// "did you mean" suggestion, and writes the normalised section back to JSON. An error in one key is recorded in the
/// <see cref="ReadContext"/> (the key keeps its default) and reading goes on, so every error of a file is reported.
/// </summary>
internal sealed class SectionSchema<T>(Func<T> create)
{
    private readonly List<Field<T>> _fields = [];
    private readonly Dictionary<string, (Field<T> Field, bool Deprecated)> _byName = new(StringComparer.Ordinal);
    private readonly List<string> _suggestOnly = [];

    /// <summary>"auto" at this level warns (top level) instead of only being recorded (inside sections).</summary>
    public bool WarnOnAuto { get; init; }
    /// <summary>Checks run after all keys are read (within-section consistency).</summary>
    public Func<T, JsonObject, ReadContext, string, T>? After { get; init; }

    private IEnumerable<string> AllNames(string path) => _byName.Keys.Concat(_suggestOnly).Concat(ConfigKeyTable.ChildrenOf(path));

    /// <summary>The canonical dotted path of every key this section reads, nested sections included.</summary>
    public IEnumerable<string> KeyPaths(string path) => Keys(path).Select(k => k.Path);

    /// <summary>Every key this section reads (nested sections included), with the range of each numeric key.</summary>
    public IEnumerable<SchemaKey> Keys(string path) =>
        _fields.SelectMany(f => f.ChildKeys(ReadContext.Join(path, f.Key)) ?? [new SchemaKey(ReadContext.Join(path, f.Key), f.Range)]);

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

    /// <summary>Names offered as "did you mean" suggestions only (old keys migrated away before reading).</summary>
    public SectionSchema<T> SuggestAlso(params string[] keys)
    {
        _suggestOnly.AddRange(keys);
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
            try
            {
                value = ReadKey(value, key, child, full, path, usedName, ctx);
            }
            catch (DeepSpeedConfigException e)
            {
                ctx.Fail(full, e); // keep the default and go on: every error of the file is reported at once
            }
        }
        if (After == null) return value;
        try
        {
            return After(value, obj, ctx, path);
        }
        catch (DeepSpeedConfigException e)
        {
            ctx.Fail(path, e);
            return value;
        }
    }

    private T ReadKey(T value, string key, JsonNode? child, string full, string path, Dictionary<Field<T>, string> usedName, ReadContext ctx)
    {
        if (key.StartsWith('_'))
        {
            ctx.CommentKeys.Add(full);
            return value;
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
                return value;
            }
            value = field.Read(value, child, ctx, full);
            // A key without effect, or rejected, matters when it asks for something: a scalar different from its
            // default (the table may say otherwise for rejected keys).
            if (field.ChildKeys(full) is null && ConfigKeyTable.Find(ReadContext.Join(path, field.Key)) is { } effect)
            {
                var read = value;
                Apply(effect, full, child, () => !JsonNode.DeepEquals(field.Write(read), field.Write(create())), ctx);
            }
            return value;
        }
        if (ConfigKeyTable.Find(full) is { Kind: not KeyEffectKind.Implemented } known)
        {
            Apply(known, full, child, () => Activity.IsActive(child), ctx);
            return value;
        }
        var suggestion = KeySuggester.Suggest(key, AllNames(path));
        throw new DeepSpeedConfigException($"unknown key '{key}' {ReadContext.Where(path)}"
            + (suggestion != null ? $"; did you mean '{suggestion}'?"
               : _fields.Count <= 12 ? $"; accepted keys: {string.Join(", ", _fields.Select(f => f.Key))}"
               : " (not a DeepSpeed key; see docs/config.md for the accepted keys)"));
    }

    private static void Apply(ConfigKeyEffect effect, string full, JsonNode? raw, Func<bool> asksForSomething, ReadContext ctx)
    {
        if (effect.Kind == KeyEffectKind.Rejected && (effect.RejectWhen?.Invoke(raw) ?? asksForSomething()))
            throw new DeepSpeedConfigException($"'{full}' = {raw?.ToJsonString() ?? "null"} is not supported by DeepSpeedSharp: {effect.Note}");
        if (effect.Kind == KeyEffectKind.NoEffect && asksForSomething()) ctx.NoEffect.Add(new NoEffectKey(full, effect.Note));
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
