using System.Globalization;
using DeepSpeedSharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Reads flat ranges of one model-parallel rank's state (the fp32 values, tensor <c>master</c>, or an optimizer state
/// kind) whatever the data-parallel size that wrote it: a range is assembled from the pieces of every file of that
/// model-parallel rank that overlap it. Each
/// file is checked against its size and SHA-256 before it is read; all tensors read are owned here until disposed.
/// </summary>
internal sealed class ShardReader : IDisposable
{
    private readonly string tagDirectory;
    private readonly Dictionary<string, Dictionary<string, Tensor>> cache = new();
    private readonly List<Tensor> produced = new();

    public ShardReader(string tagDirectory, CheckpointManifest manifest, int mpRank = 0)
    {
        this.tagDirectory = tagDirectory;
        Manifest = manifest;
        Shard = manifest.Shards.FirstOrDefault(s => s.MpRank == mpRank)
                ?? throw new InvalidDataException($"checkpoint '{tagDirectory}' has no shard for model-parallel rank {mpRank} (it has {manifest.Shards.Count})");
        ShardFiles = manifest.Files.Where(f => f.MpRank == mpRank).ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var byModelName = new Dictionary<string, CheckpointParameter>();
        foreach (var p in Shard.Parameters)
            if (!names.Add(p.Name) || !byModelName.TryAdd(p.ExportName, p))
                throw new InvalidDataException($"checkpoint manifest '{ManifestPath}' lists parameter '{p.ExportName}' twice");
        ByModelName = byModelName;
    }

    /// <summary>The checkpoint's trainable parameters by the unsplit model's name (<see cref="CheckpointParameter.ExportName"/>).</summary>
    public IReadOnlyDictionary<string, CheckpointParameter> ByModelName { get; }

    public CheckpointManifest Manifest { get; }

    /// <summary>The model-parallel rank's entry of the manifest.</summary>
    public CheckpointShard Shard { get; }

    /// <summary>The files holding this model-parallel rank's state.</summary>
    public IReadOnlyList<CheckpointFile> ShardFiles { get; }

    /// <summary>The tag directory being read.</summary>
    public string Directory => tagDirectory;

    private string ManifestPath => Path.Combine(tagDirectory, CheckpointManifest.FileName);

    /// <summary>Every tensor of a data file, after checking its size and checksum.</summary>
    public Dictionary<string, Tensor> File(string name)
    {
        if (cache.TryGetValue(name, out var hit)) return hit;
        if (Manifest.Files.All(f => f.Name != name)) throw new InvalidDataException($"checkpoint manifest '{ManifestPath}' does not list the file '{name}'");
        var problems = Manifest.VerifyFiles(tagDirectory, new[] { name });
        if (problems.Count > 0) throw new InvalidDataException($"checkpoint '{tagDirectory}': {string.Join("; ", problems)}");
        var tensors = SafeTensors.Read(Path.Combine(tagDirectory, name));
        foreach (var t in tensors.Values) t.DetachFromDisposeScope();
        cache[name] = tensors;
        return tensors;
    }

    /// <summary>The fp32 values of <paramref name="kind"/> for flat elements [start, start + length) of the checkpoint.</summary>
    public Tensor Read(string kind, long start, long length)
    {
        var result = empty(length, ScalarType.Float32).DetachFromDisposeScope();
        long covered = 0;
        foreach (var (file, piece) in Overlapping(start, length))
        {
            var tensors = File(file.Name);
            string key = $"{kind}@{piece.Start.ToString(CultureInfo.InvariantCulture)}";
            if (!tensors.TryGetValue(key, out var src))
                throw new InvalidDataException($"checkpoint file '{Path.Combine(tagDirectory, file.Name)}' has no tensor '{key}' that its manifest entry promises");
            if (src.numel() != piece.Length)
                throw new InvalidDataException($"checkpoint file '{Path.Combine(tagDirectory, file.Name)}': tensor '{key}' has {src.numel()} elements, the manifest says {piece.Length}");
            long s = Math.Max(start, piece.Start), e = Math.Min(start + length, piece.Start + piece.Length);
            using var from = src.narrow(0, s - piece.Start, e - s);
            using var to = result.narrow(0, s - start, e - s);
            to.copy_(from);
            covered += e - s;
        }
        if (covered != length)
        {
            result.Dispose();
            throw new InvalidDataException($"checkpoint '{tagDirectory}' holds {covered} of the {length} elements of '{kind}' in flat range [{start}, {start + length}) (a missing shard?)");
        }
        produced.Add(result);
        return result;
    }

    /// <summary>The distinct step counts recorded for the pieces overlapping [start, start + length).</summary>
    public IEnumerable<long> Steps(long start, long length) =>
        Overlapping(start, length).Select(x => x.Piece.Step).OfType<long>().Distinct();

    private IEnumerable<(CheckpointFile File, CheckpointPiece Piece)> Overlapping(long start, long length)
    {
        foreach (var f in ShardFiles)
            foreach (var p in f.Pieces)
                if (p.Start < start + length && start < p.Start + p.Length) yield return (f, p);
    }

    /// <summary>The data file written by data-parallel rank <paramref name="rank"/> of this model-parallel rank, if any.</summary>
    public CheckpointFile? RankFile(int rank) => ShardFiles.FirstOrDefault(f => f.Rank == rank);

    public void Dispose()
    {
        foreach (var file in cache.Values)
            foreach (var t in file.Values) t.Dispose();
        cache.Clear();
        foreach (var t in produced) t.Dispose();
        produced.Clear();
    }
}
