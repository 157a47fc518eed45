using DeepSpeedSharp.IO;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// The data files of one checkpoint tag, opened as bytes (<see cref="RawSafeTensorsFile"/>, no torch) when first asked
/// for, each checked against its manifest entry's size and SHA-256 before it is opened, and kept open until disposed.
/// </summary>
internal sealed class CheckpointDataFiles(string tagDirectory, CheckpointManifest manifest) : IDisposable
{
    private readonly Dictionary<string, RawSafeTensorsFile> open = new(StringComparer.Ordinal);

    /// <summary>The tag directory read.</summary>
    public string TagDirectory => tagDirectory;

    /// <summary>Its manifest.</summary>
    public CheckpointManifest Manifest => manifest;

    /// <summary>The data file <paramref name="name"/> of the tag, after checking its size and checksum.</summary>
    public RawSafeTensorsFile Open(string name)
    {
        if (open.TryGetValue(name, out var file)) return file;
        if (manifest.Files.All(f => f.Name != name))
            throw new InvalidDataException($"checkpoint manifest '{Path.Combine(tagDirectory, CheckpointManifest.FileName)}' does not list the file '{name}'");
        var problems = manifest.VerifyFiles(tagDirectory, [name]);
        if (problems.Count > 0) throw new InvalidDataException($"checkpoint '{tagDirectory}': {string.Join("; ", problems)}");
        return open[name] = new RawSafeTensorsFile(Path.Combine(tagDirectory, name));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var file in open.Values) file.Dispose();
        open.Clear();
    }
}
