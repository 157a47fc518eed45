using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Config.Schema;

namespace DeepSpeedSharp.Config;

/// <summary>
/// A DeepSpeed JSON config, read the way DeepSpeed reads it (same keys, defaults, aliases and deprecated-key
/// migrations) but stricter: unknown keys are errors everywhere (with a "did you mean" suggestion), and DeepSpeed
/// features DeepSpeedSharp does not implement are either rejected (when ignoring them would silently change training)
/// or listed in one warning. See docs/config.md.
/// </summary>
public sealed partial class DeepSpeedConfig
{
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        MaxDepth = 256,
    };

    private static readonly Lazy<DeepSpeedConfig> DefaultConfig = new(() => FromJson("{}"));

    private DeepSpeedConfig() { }

    /// <summary>The empty config <c>{}</c>: every default, batch sizes unresolved.</summary>
    public static DeepSpeedConfig Default => DefaultConfig.Value;

    /// <summary>Non-fatal findings: deprecated keys migrated, "auto" values replaced by defaults, keys without effect.</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = [];

    /// <summary>Keys in the file that DeepSpeedSharp accepts but that have no effect here, each with the reason
    /// (<see cref="Keys.ConfigKeyTable"/>); a key is listed when it asks for something (a value other than its default).</summary>
    public IReadOnlyList<NoEffectKey> NoEffectKeys { get; private set; } = [];

    /// <summary>Paths of the keys whose value was "auto" (e.g. <c>optimizer.params.lr</c>).</summary>
    public IReadOnlyList<string> AutoKeys { get; private set; } = [];

    /// <summary>
    /// Reads <paramref name="pathOrJson"/>: an existing file path → the file; text starting with '{' → JSON;
    /// otherwise base64-encoded JSON (as <c>deepspeed.initialize</c> accepts); anything else is an error.
    /// </summary>
    public static DeepSpeedConfig Load(string pathOrJson)
    {
        ArgumentNullException.ThrowIfNull(pathOrJson);
        if (File.Exists(pathOrJson)) return FromFile(pathOrJson);
        if (Directory.Exists(pathOrJson)) throw new DeepSpeedConfigException($"'{pathOrJson}' is a directory, not a config file");
        var trimmed = pathOrJson.TrimStart();
        if (trimmed.StartsWith('{')) return FromJson(pathOrJson);
        if (TryDecodeBase64(trimmed.TrimEnd(), out var decoded)) return FromJson(decoded);
        var shown = pathOrJson.Length > 80 ? pathOrJson[..77] + "..." : pathOrJson;
        throw new DeepSpeedConfigException(
            $"'{shown}' is neither an existing file, nor a JSON object, nor base64-encoded JSON; pass a config path, JSON text starting with '{{', or base64 of the JSON");
    }

    /// <summary>Reads a config file (JSON; comments and trailing commas allowed).</summary>
    public static DeepSpeedConfig FromFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) throw new DeepSpeedConfigException($"'{path}' is a directory, not a config file");
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new DeepSpeedConfigException($"cannot read config file '{path}': {e.Message}", e);
        }
        try
        {
            return FromJson(text);
        }
        catch (DeepSpeedConfigException e)
        {
            throw DeepSpeedConfigException.Of(e.Errors, path, e);
        }
    }

    /// <summary>Parses JSON text (comments and trailing commas allowed; duplicate keys rejected).</summary>
    public static DeepSpeedConfig FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (string.IsNullOrWhiteSpace(json)) throw new DeepSpeedConfigException("the config is empty; expected a JSON object such as {\"train_batch_size\": 8}");
        if (json.IndexOf('\0') >= 0) throw new DeepSpeedConfigException("not valid JSON: the text contains NUL characters (binary data?)");
        DuplicateKeyChecker.Check(json);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: DocumentOptions);
        }
        catch (JsonException e)
        {
            throw DeepSpeedConfigException.InvalidJson(e);
        }
        if (root is not JsonObject obj) throw Kinds.Expected("config", "a JSON object at the top level", root);
        return Build(obj);
    }

    /// <summary>Reads an in-memory object (anonymous object, dictionary, <see cref="JsonNode"/>, <see cref="JsonElement"/>) by serialising it with System.Text.Json.</summary>
    public static DeepSpeedConfig FromObject(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        string json;
        try
        {
            json = value switch
            {
                DeepSpeedConfig c => c.ToJson(),
                string s => s,
                JsonNode n => n.ToJsonString(),
                JsonElement e => e.GetRawText(),
                JsonDocument d => d.RootElement.GetRawText(),
                _ => JsonSerializer.Serialize(value, value.GetType()),
            };
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or JsonException)
        {
            throw new DeepSpeedConfigException($"cannot turn the {value.GetType().Name} into JSON: {e.Message}", e);
        }
        return FromJson(json);
    }

    /// <summary>The normalised config (every key with its effective value, current key names) as indented JSON.</summary>
    public string ToJson() => TopLevel.Write(this).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    private static DeepSpeedConfig Build(JsonObject root)
    {
        var ctx = new ReadContext();
        LegacyMigrations.Apply(root, ctx);
        var config = TopLevel.Read(root, ctx, "");
        ConfigChecks.Validate(config, ctx);
        if (ctx.Errors.Count > 0) throw DeepSpeedConfigException.Of(ctx.Errors);
        config.Warnings = ctx.FinishWarnings();
        config.NoEffectKeys = ctx.NoEffect.DistinctBy(k => k.Key).ToList();
        config.AutoKeys = ctx.AutoKeys.ToList();
        return config;
    }

    private static bool TryDecodeBase64(string text, out string json)
    {
        json = "";
        if (text.Length == 0 || text.Length % 4 != 0) return false;
        var buffer = new byte[text.Length * 3 / 4];
        if (!Convert.TryFromBase64String(text, buffer, out var written)) return false;
        try
        {
            json = new UTF8Encoding(false, true).GetString(buffer, 0, written);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        return json.TrimStart().StartsWith('{');
    }
}
