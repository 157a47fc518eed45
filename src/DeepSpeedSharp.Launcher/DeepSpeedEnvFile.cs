namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The variables the runner exports to every rank: DeepSpeed's prefixes (<c>MLFLOW</c>, <c>PYTHON</c>,
/// <c>MV2</c>, <c>UCX</c>, <c>NCCL</c>) plus .NET's and ours (<c>DOTNET_</c>, <c>OMP_</c>, <c>DSS_</c>), then every
/// <c>KEY=VALUE</c> line of <c>~/.deepspeed_env</c> and then <c>./.deepspeed_env</c> (the file name comes from
/// <c>DS_ENV_FILE</c> when set). Later definitions win.
/// </summary>
public static class DeepSpeedEnvFile
{
    /// <summary>Name prefixes of launcher-side variables exported to remote ranks.</summary>
    public static readonly IReadOnlyList<string> ExportPrefixes = ["MLFLOW", "PYTHON", "MV2", "UCX", "NCCL", "DOTNET_", "OMP_", "DSS_"];

    /// <summary>The env files that apply, in the order they are read (home first, then the working directory).</summary>
    public static IReadOnlyList<string> Paths(IReadOnlyDictionary<string, string> environment, string workingDirectory, string home)
    {
        var name = environment.TryGetValue("DS_ENV_FILE", out var n) && n.Length > 0 ? n : ".deepspeed_env";
        return new[] { Path.Combine(home, name), Path.Combine(workingDirectory, name) }
            .Select(Path.GetFullPath).Distinct().ToList();
    }

    /// <summary>Reads one env file: <c>KEY=VALUE</c> per line (value may contain '='); blank and '#' lines are skipped.</summary>
    /// <exception cref="FormatException">A line without '=' or with an empty key, naming file and line.</exception>
    public static List<KeyValuePair<string, string>> Read(string path)
    {
        var result = new List<KeyValuePair<string, string>>();
        int n = 0;
        foreach (var raw in File.ReadAllLines(path))
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int eq = line.IndexOf('=');
            if (eq <= 0) throw new FormatException($"{path}:{n}: '{line}' is not KEY=VALUE.");
            result.Add(new(line[..eq].Trim(), line[(eq + 1)..].Trim()));
        }
        return result;
    }

    /// <summary>
    /// The variables to export: matching-prefix variables of <paramref name="environment"/> when
    /// <paramref name="includePrefixed"/>, then the env files' lines.
    /// </summary>
    public static Dictionary<string, string> Collect(IReadOnlyDictionary<string, string> environment, string workingDirectory, string home, bool includePrefixed)
    {
        var exports = new Dictionary<string, string>(StringComparer.Ordinal);
        if (includePrefixed)
        {
            foreach (var (k, v) in environment.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                if (ExportPrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal)) && k != RankEnvironment.JobTokenVariable)
                    exports[k] = v;
        }
        foreach (var path in Paths(environment, workingDirectory, home))
            if (File.Exists(path))
                foreach (var (k, v) in Read(path)) exports[k] = v;
        return exports;
    }
}
