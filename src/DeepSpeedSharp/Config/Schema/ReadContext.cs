namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// State shared while one config is being read: warnings, keys whose value was "auto", keys starting with '_', and
/// keys that have no effect here (reported by <c>validate-config</c> and at start).
/// </summary>
internal sealed class ReadContext
{
    public List<string> Warnings { get; } = [];
    public List<string> AutoKeys { get; } = [];
    /// <summary>Keys present that have no effect here (see <see cref="Keys.ConfigKeyTable"/>), with the reason.</summary>
    public List<NoEffectKey> NoEffect { get; } = [];
    public List<string> CommentKeys { get; } = [];
    /// <summary>Every error found so far, one line each (the reader goes on after an error to report them all).</summary>
    public List<string> Errors { get; } = [];
    /// <summary>Dotted paths of the keys that failed; cross-key checks involving them are skipped (their values are defaults).</summary>
    public HashSet<string> FailedKeys { get; } = new(StringComparer.Ordinal);

    /// <summary>Records the error(s) of the key at <paramref name="path"/> and goes on reading.</summary>
    public void Fail(string path, DeepSpeedConfigException e)
    {
        Errors.AddRange(e.Errors);
        FailedKeys.Add(path);
    }

    /// <summary>Whether a key at or above/below any of <paramref name="paths"/> failed to read.</summary>
    public bool AnyFailed(params string[] paths) =>
        FailedKeys.Any(f => paths.Any(p => f == p || f.StartsWith(p + ".", StringComparison.Ordinal) || p.StartsWith(f + ".", StringComparison.Ordinal)));

    /// <summary>"zero_optimization" + "stage" → "zero_optimization.stage"; top level has an empty path.</summary>
    public static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    /// <summary>"in zero_optimization" or "at the top level", for messages.</summary>
    public static string Where(string path) => path.Length == 0 ? "at the top level" : "in " + path;

    public static DeepSpeedConfigException Error(string message) => new(message);

    /// <summary>Appends the summary warnings (auto keys, commented-out keys) once reading is done.</summary>
    public List<string> FinishWarnings()
    {
        var all = new List<string>(Warnings);
        var sectionAutos = AutoKeys.Where(k => k.Contains('.')).ToList();
        if (sectionAutos.Count > 0)
            all.Add("\"auto\" values replaced by DeepSpeed's defaults (nothing fills them in here): " + string.Join(", ", sectionAutos));
        if (CommentKeys.Count > 0)
            all.Add("keys starting with '_' are treated as commented out and ignored: " + string.Join(", ", CommentKeys));
        return all;
    }
}
