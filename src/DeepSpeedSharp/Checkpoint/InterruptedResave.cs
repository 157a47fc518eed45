namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Re-saving an existing tag renames the old copy away (<c>.old-TAG-N</c>), then the new one into place
/// (<c>.tmp-TAG-N</c> → <c>TAG</c>). A job stopped between the two renames leaves no <c>TAG</c> directory but a complete
/// copy of it: the new one (a <c>.tmp</c> holding its manifest, written last) or else the old one. Loading, export and
/// inspect use that copy; the next save puts it back under its tag before it removes debris.
/// </summary>
internal static class InterruptedResave
{
    /// <summary>The directory of <paramref name="tag"/>: the tag's own, or the complete copy an interrupted re-save left
    /// (the newest complete <c>.tmp</c>, else the newest <c>.old</c>); null when there is none.</summary>
    public static string? FindTagDirectory(string directory, string tag)
    {
        string own = Path.Combine(directory, tag);
        if (Directory.Exists(own)) return own;
        return Copies(directory, tag, ".tmp-").Concat(Copies(directory, tag, ".old-")).FirstOrDefault();
    }

    /// <summary>True when <paramref name="tagDirectory"/> is a copy left by an interrupted re-save, not the tag's own directory.</summary>
    public static bool IsLeftCopy(string tagDirectory) => Path.GetFileName(tagDirectory) is var n && (n.StartsWith(".tmp-", StringComparison.Ordinal) || n.StartsWith(".old-", StringComparison.Ordinal));

    /// <summary>Puts the complete copy of every tag whose directory is missing back under its name (before debris is removed).</summary>
    public static void Restore(string directory)
    {
        var missing = Directory.EnumerateDirectories(directory, ".tmp-*").Concat(Directory.EnumerateDirectories(directory, ".old-*"))
            .Select(d => TagOf(Path.GetFileName(d)))
            .Where(t => t != null && !Directory.Exists(Path.Combine(directory, t)))
            .Distinct(StringComparer.Ordinal).ToList();
        foreach (var tag in missing)
            if (FindTagDirectory(directory, tag!) is { } copy)
                try { Directory.Move(copy, Path.Combine(directory, tag!)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // left for the next save
    }

    /// <summary>Complete copies of <paramref name="tag"/> with the given prefix, newest first.</summary>
    private static IEnumerable<string> Copies(string directory, string tag, string prefix) =>
        Directory.Exists(directory)
            ? Directory.EnumerateDirectories(directory, prefix + "*")
                .Where(d => TagOf(Path.GetFileName(d)) == tag && File.Exists(Path.Combine(d, CheckpointManifest.FileName)))
                .OrderByDescending(Directory.GetLastWriteTimeUtc)
            : [];

    /// <summary>The tag of <c>.tmp-TAG-N</c> / <c>.old-TAG-N</c> (the job number follows the last '-'), or null.</summary>
    private static string? TagOf(string name)
    {
        if (!name.StartsWith(".tmp-", StringComparison.Ordinal) && !name.StartsWith(".old-", StringComparison.Ordinal)) return null;
        int dash = name.LastIndexOf('-');
        return dash > 5 && long.TryParse(name[(dash + 1)..], out _) ? name[5..dash] : null;
    }
}
