using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// Reads the DeepSpeed config that <c>dss launch</c> passes to PROGRAM (<c>--deepspeed_config FILE</c>, DeepSpeed's
/// argument name) with the library's loader before any rank starts (or the project is built): a bad config is then one
/// line from the launcher naming the file and the key, instead of the same error from every rank.
/// </summary>
public static class ConfigPreflight
{
    /// <summary>DeepSpeed's names of the argument that carries the config (<c>--deepscale_config</c> is its old name).</summary>
    private static readonly string[] Flags = ["--deepspeed_config", "--deepscale_config"];

    /// <summary>The flag and value of the config argument among PROGRAM's arguments, or null when there is none.</summary>
    internal static (string Flag, string Value)? Find(IReadOnlyList<string> programArgs)
    {
        for (int i = 0; i < programArgs.Count; i++)
        {
            foreach (var flag in Flags)
            {
                if (programArgs[i] == flag && i + 1 < programArgs.Count) return (flag, programArgs[i + 1]);
                if (programArgs[i].StartsWith(flag + "=", StringComparison.Ordinal)) return (flag, programArgs[i][(flag.Length + 1)..]);
            }
        }
        return null;
    }

    /// <summary>
    /// Loads the config named among <paramref name="programArgs"/> (relative to <paramref name="workingDirectory"/>,
    /// where the ranks run); does nothing when there is none.
    /// </summary>
    /// <exception cref="ArgumentException">The config cannot be read or is invalid: one line naming the file and its error(s).</exception>
    public static void Check(IReadOnlyList<string> programArgs, string workingDirectory)
    {
        if (Find(programArgs) is not var (flag, value)) return;
        var path = Path.GetFullPath(value, workingDirectory);
        bool json = value.TrimStart().StartsWith('{');
        if (!json && !File.Exists(path) && (value.Contains('/') || value.EndsWith(".json", StringComparison.OrdinalIgnoreCase)))
            throw new ArgumentException($"{flag} {value}: no such file ({path}); no rank was started.");
        try
        {
            // Load takes what DeepSpeed.Initialize takes: a path, JSON text or base64 of it.
            DeepSpeedConfig.Load(!json && File.Exists(path) ? path : value);
        }
        catch (DeepSpeedConfigException e)
        {
            var errors = e.Errors.Count == 1 ? e.Errors[0] : $"{e.Errors.Count} errors: {string.Join("; ", e.Errors)}";
            throw new ArgumentException($"{flag} {value}: {errors} (no rank was started; `dss validate-config FILE` checks a config).");
        }
    }
}
