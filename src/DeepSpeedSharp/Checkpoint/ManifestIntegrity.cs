using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using DeepSpeedSharp.IO;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Detects a manifest edited after its checkpoint was saved, two ways: (1) every rank's
/// <c>optim_states</c> file records the engine counters (<c>global_steps</c>, <c>global_samples</c>, <c>skipped_steps</c>,
/// <c>micro_steps</c>) in its safetensors metadata, and the manifest's counters must agree with them (the file itself is
/// covered by its SHA-256 in the manifest); (2) the manifest carries <c>field_sha256</c>, the SHA-256 of every other
/// top-level field's canonical JSON (<see cref="CanonicalJson"/>: a value, not its number text or key order), and every
/// field must still match. Checkpoints saved before these were added have neither
/// and load as before. Errors name the manifest, the field and, for the counters, both values.
/// </summary>
internal static class ManifestIntegrity
{
    /// <summary>The manifest field holding the SHA-256 of every other top-level field.</summary>
    public const string DigestField = "field_sha256";

    /// <summary>The engine counters recorded in each rank's file, as safetensors metadata (manifest field → value).</summary>
    public static Dictionary<string, string> CountersOf(CheckpointManifest m) => new()
    {
        ["global_steps"] = m.GlobalSteps.ToString(CultureInfo.InvariantCulture),
        ["global_samples"] = m.GlobalSamples.ToString(CultureInfo.InvariantCulture),
        ["skipped_steps"] = m.SkippedSteps.ToString(CultureInfo.InvariantCulture),
        ["micro_steps"] = m.MicroSteps.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Adds <see cref="DigestField"/> to a manifest about to be written (parsed from its serialised text).</summary>
    public static void Seal(JsonObject manifest)
    {
        var digests = new JsonObject();
        foreach (var (key, value) in manifest)
            if (key != DigestField) digests[key] = Hash(value);
        manifest[DigestField] = digests;
    }

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when the manifest at <paramref name="path"/> disagrees with the
    /// counters its rank files record or with its own field digests.
    /// </summary>
    public static void Verify(string path, string tagDirectory, JsonObject raw, CheckpointManifest m)
    {
        var problems = new List<(string Field, string Text)>();
        foreach (var (field, value, file, saved) in CounterMismatches(tagDirectory, m))
            problems.Add((field, $"field '{field}' is {value}, but the shard file '{file}' records {saved}"));
        if (raw.TryGetPropertyValue(DigestField, out var node))
        {
            if (node is not JsonObject digests)
                problems.Add((DigestField, $"field '{DigestField}' is not an object of SHA-256 digests"));
            else
            {
                foreach (var (key, value) in raw)
                {
                    if (key == DigestField || problems.Any(p => p.Field == key)) continue;
                    if (!digests.TryGetPropertyValue(key, out var d))
                        problems.Add((key, $"field '{key}' was added after the checkpoint was saved (it has no digest in '{DigestField}')"));
                    else if (d?.ToString() is not { } saved || (saved != Hash(value) && saved != LegacyHash(value)))
                        problems.Add((key, $"field '{key}' was changed after the checkpoint was saved (its SHA-256 no longer matches '{DigestField}')"));
                }
                foreach (var (key, _) in digests)
                    if (!raw.ContainsKey(key)) problems.Add((key, $"field '{key}' was removed after the checkpoint was saved"));
            }
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"checkpoint manifest '{path}' was edited after the checkpoint was saved: {string.Join("; ", problems.Select(p => p.Text))}; " +
                                           "restore the original manifest (resuming from it would start from the wrong state)");
    }

    private static IEnumerable<(string Field, string Value, string File, string Saved)> CounterMismatches(string tagDirectory, CheckpointManifest m)
    {
        var rankFile = m.Files.FirstOrDefault(f => f.HasRngState);
        if (rankFile == null) yield break;
        var filePath = Path.Combine(tagDirectory, rankFile.Name);
        Dictionary<string, string> recorded;
        try
        {
            if (!File.Exists(filePath)) yield break;
            recorded = SafeTensors.ReadMetadata(filePath);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            yield break; // a damaged file is reported by its size and checksum
        }
        foreach (var (field, value) in CountersOf(m))
            if (recorded.TryGetValue(field, out var saved) && saved != value)
                yield return (field, value, rankFile.Name, saved);
    }

    /// <summary>The SHA-256 of a field's canonical JSON: a reformatted manifest (<c>jq .</c>, Python's <c>json.dump</c>) keeps it.</summary>
    private static string Hash(JsonNode? value) => Sha256(CanonicalJson.Write(value));

    /// <summary>What builds before the canonical form hashed: the field's text as System.Text.Json wrote it.</summary>
    private static string LegacyHash(JsonNode? value) => Sha256(value?.ToJsonString() ?? "null");

    private static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
