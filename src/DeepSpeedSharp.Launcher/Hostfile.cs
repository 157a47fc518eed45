using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// MPI-style hostfiles (<c>worker-0 slots=4</c> per line), read as DeepSpeed's <c>fetch_hostfile</c> does:
/// blank lines and lines starting with <c>#</c> are skipped, every other line must start with
/// <c>NAME slots=N</c>, and a host may appear only once.
/// </summary>
public static partial class Hostfile
{
    /// <summary>DeepSpeed's default hostfile path.</summary>
    public const string DefaultPath = "/job/hostfile";

    [GeneratedRegex(@"^(\S+)\s+slots=(\d+)")]
    private static partial Regex EntryPattern();

    /// <summary>
    /// Reads <paramref name="path"/>; returns null when there is no such file (the caller then runs locally,
    /// as DeepSpeed does after warning).
    /// </summary>
    public static OrderedDictionary<string, int>? Fetch(string path)
    {
        if (!File.Exists(path)) return null;
        return Parse(File.ReadAllLines(path), path);
    }

    /// <summary>Parses hostfile lines into host → slot count, keeping the file's order.</summary>
    /// <exception cref="FormatException">A bad line, a repeated host, or no host at all.</exception>
    public static OrderedDictionary<string, int> Parse(IEnumerable<string> lines, string source = "hostfile")
    {
        var pool = new OrderedDictionary<string, int>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var raw in lines)
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var m = EntryPattern().Match(line);
            if (!m.Success)
                throw new FormatException($"{source}:{lineNumber}: Hostfile contains a bad entry: '{line}' (expected 'HOSTNAME slots=N'), unable to proceed with launching.");
            var host = m.Groups[1].Value;
            if (!int.TryParse(m.Groups[2].Value, out int slots))
                throw new FormatException($"{source}:{lineNumber}: slots={m.Groups[2].Value} for host '{host}' is too large.");
            if (pool.ContainsKey(host))
                throw new FormatException($"{source}:{lineNumber}: Hostfile contains multiple entries for {host}, unable to proceed with launching.");
            pool.Add(host, slots);
        }
        if (pool.Count == 0)
            throw new FormatException($"{source}: Hostfile is empty or not formatted correctly (no 'HOSTNAME slots=N' line), unable to proceed with launching.");
        return pool;
    }
}
