using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Tests.Config;

internal static class ConfigTestHelpers
{
    /// <summary>Parses the JSON expecting failure; returns the message.</summary>
    public static string ErrorOf(string json) => Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson(json)).Message;

    /// <summary>The repository root (directory holding DeepSpeedSharp.slnx), found by walking up from the test output dir.</summary>
    public static string? RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DeepSpeedSharp.slnx"))) return d.FullName;
        return null;
    }

    /// <summary>../shared/data/ds-configs relative to the repository root, or null when absent.</summary>
    public static string? CorpusDir()
    {
        var root = RepoRoot();
        if (root == null) return null;
        var dir = Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "ds-configs"));
        return Directory.Exists(dir) ? dir : null;
    }
}
