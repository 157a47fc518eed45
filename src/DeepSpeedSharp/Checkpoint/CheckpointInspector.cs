using System.Globalization;
using System.Text;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>Describes a checkpoint directory (tags, latest, world size, stage, dtypes, sizes) and verifies checksums.</summary>
public static class CheckpointInspector
{
    /// <summary>The complete tags of a checkpoint directory (sub-directories with a manifest), in name order.</summary>
    public static IReadOnlyList<string> Tags(string directory) =>
        Directory.Exists(directory)
            ? Directory.GetDirectories(directory).Select(Path.GetFileName).OfType<string>()
                .Where(n => !n.StartsWith('.') && File.Exists(Path.Combine(directory, n, CheckpointManifest.FileName)))
                .Order(StringComparer.Ordinal).ToList()
            : Array.Empty<string>();

    /// <summary>
    /// A report of the directory (or only of <paramref name="tag"/>); <paramref name="ok"/> is false when a file is
    /// missing, has the wrong size or fails its checksum, or a manifest cannot be read.
    /// </summary>
    public static string Inspect(string directory, string? tag, out bool ok)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"checkpoint directory '{directory}' does not exist");
        var sb = new StringBuilder();
        ok = true;
        string? latest = null;
        try { latest = CheckpointNames.ReadLatest(directory); }
        catch (InvalidDataException e) { sb.AppendLine($"latest: ERROR {e.Message}"); ok = false; }
        var tags = Tags(directory);
        if (tags.Count == 0 && latest == null && tag == null)
        {
            var unfinished = Directory.GetDirectories(directory, ".tmp-*").Select(Path.GetFileName).ToList();
            throw new InvalidDataException($"'{directory}' holds no checkpoint: no complete tag and no 'latest' file" +
                                           (unfinished.Count > 0 ? $" (only incomplete saves: {string.Join(", ", unfinished)})" : "") +
                                           "; pass the directory SaveCheckpoint wrote to");
        }
        sb.AppendLine($"checkpoint directory {directory}");
        sb.AppendLine($"latest: {latest ?? "(none)"}");
        sb.AppendLine($"tags: {(tags.Count == 0 ? "(none)" : string.Join(", ", tags))}");
        string? recovered = latest != null && !tags.Contains(latest) ? InterruptedResave.FindTagDirectory(directory, latest) : null;
        var partial = Directory.GetDirectories(directory, ".tmp-*").Where(d => d != recovered).Select(Path.GetFileName).ToList();
        if (partial.Count > 0) sb.AppendLine($"incomplete saves (ignored, safe to delete): {string.Join(", ", partial)}");
        if (recovered != null)
            sb.AppendLine($"latest names '{latest}', whose directory is missing: a re-save of it was interrupted between its renames; its complete copy " +
                          $"{Path.GetFileName(recovered)} is what loading uses, and the next save puts it back under '{latest}' (do not delete it)");
        else if (latest != null && !tags.Contains(latest)) { sb.AppendLine($"ERROR: latest names '{latest}', which is not a complete tag"); ok = false; }
        if (tag != null && !tags.Contains(tag) && !Directory.Exists(Path.Combine(directory, tag)))
            throw new DirectoryNotFoundException($"checkpoint tag '{tag}' does not exist in '{directory}' (tags: {string.Join(", ", tags)})");
        foreach (var t in tag != null ? new[] { tag } : tags)
            ok &= DescribeTag(sb, Path.Combine(directory, t));
        if (recovered != null && tag == null) ok &= DescribeTag(sb, recovered);
        sb.AppendLine(ok ? "all checksums verified" : "PROBLEMS FOUND");
        return sb.ToString();
    }

    private static bool DescribeTag(StringBuilder sb, string tagDir)
    {
        sb.AppendLine();
        sb.AppendLine($"[{Path.GetFileName(tagDir)}]");
        CheckpointManifest m;
        try { m = CheckpointManifest.Read(tagDir); }
        catch (Exception e) when (e is InvalidDataException or IOException) { sb.AppendLine($"  ERROR {e.Message}"); return false; }
        string I(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        sb.AppendLine($"  topology {m.Topology}: data-parallel size {m.WorldSize}, model-parallel size {m.ModelParallelSize}; ZeRO stage {m.ZeroStage}, global steps {m.GlobalSteps}, samples {m.GlobalSamples}, skipped {m.SkippedSteps}");
        foreach (var s in m.Shards)
            sb.AppendLine($"  {(m.Shards.Count > 1 ? $"mp rank {s.MpRank} " : "")}parameters: {s.Parameters.Count} trainable, {I(s.TotalElements)} elements; model dtypes {string.Join(", ", s.Parameters.Select(p => p.Dtype).Distinct())}; stored as F32");
        if (m.Optimizer is { } o)
            sb.AppendLine($"  optimizer {o.Type} ({(o.Reshardable ? "reshardable" : "binary, same world size and stage only")}), state [{string.Join(", ", o.StateKinds)}], lr {string.Join(", ", o.Lrs.Select(x => x.ToString("G6", CultureInfo.InvariantCulture)))}");
        if (m.LrScheduler != null) sb.AppendLine($"  lr scheduler {m.LrScheduler.ToJsonString()}");
        if (m.ExtraState.Count > 0) sb.AppendLine($"  extra state: {string.Join(", ", m.ExtraState.Select(kv => kv.Key))}");
        if (m.ClientState != null) sb.AppendLine($"  client state {m.ClientState.ToJsonString()}");
        var problems = m.VerifyFiles(tagDir);
        foreach (var f in m.Files)
        {
            var bad = problems.FirstOrDefault(p => p.Contains($"'{Path.Combine(tagDir, f.Name)}'", StringComparison.Ordinal));
            long elements = f.Pieces.Sum(p => p.Length);
            sb.AppendLine($"  {f.Name,-48} {I(f.Bytes),14} bytes  {(f.Rank >= 0 ? $"dp rank {f.Rank}, {I(elements)} elements" : "module states"),-30} {(bad == null ? "sha256 OK" : "FAILED: " + bad)}");
        }
        return problems.Count == 0;
    }
}
