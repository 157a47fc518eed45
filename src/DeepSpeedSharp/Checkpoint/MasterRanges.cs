using System.Globalization;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Reads flat ranges of one model-parallel rank's fp32 values (the tensors <c>master@START</c>) as bytes, whatever the
/// data-parallel size and ZeRO stage that wrote them: a range is assembled from the pieces of every file of that rank
/// that overlap it. The torch-free counterpart of <see cref="ShardReader.Read"/>, for export.
/// </summary>
internal sealed class MasterRanges
{
    private const string Kind = "master";
    private readonly CheckpointDataFiles files;
    private readonly List<(CheckpointFile File, CheckpointPiece Piece)> pieces;

    /// <summary>The ranges of model-parallel rank <paramref name="mpRank"/> of the checkpoint <paramref name="files"/> belong to.</summary>
    public MasterRanges(CheckpointDataFiles files, int mpRank)
    {
        this.files = files;
        var m = files.Manifest;
        Shard = m.Shards.FirstOrDefault(s => s.MpRank == mpRank)
                ?? throw new InvalidDataException($"checkpoint '{files.TagDirectory}' has no shard for model-parallel rank {mpRank} (it has {m.Shards.Count})");
        var byName = new Dictionary<string, CheckpointParameter>(StringComparer.Ordinal);
        foreach (var p in Shard.Parameters)
            if (!byName.TryAdd(p.Name, p))
                throw new InvalidDataException($"checkpoint manifest '{Path.Combine(files.TagDirectory, CheckpointManifest.FileName)}' lists parameter '{p.Name}' twice");
        Parameters = byName;
        // Pieces of one rank do not overlap (each flat element is written once), so sorted by start they are sorted by end too.
        pieces = m.Files.Where(f => f.MpRank == mpRank).SelectMany(f => f.Pieces.Select(p => (f, p))).OrderBy(x => x.p.Start).ToList();
    }

    /// <summary>The model-parallel rank's entry of the manifest.</summary>
    public CheckpointShard Shard { get; }

    /// <summary>Its trainable parameters by name.</summary>
    public IReadOnlyDictionary<string, CheckpointParameter> Parameters { get; }

    /// <summary>Fills <paramref name="destination"/> with the fp32 values of flat elements [start, start + destination.Length).</summary>
    public void Read(long start, Span<float> destination)
    {
        long length = destination.Length, end = start + length, covered = 0;
        for (int i = FirstEndingAfter(start); i < pieces.Count && pieces[i].Piece.Start < end; i++)
        {
            var (file, piece) = pieces[i];
            var data = files.Open(file.Name);
            string key = $"{Kind}@{piece.Start.ToString(CultureInfo.InvariantCulture)}";
            var layout = data.Find(key)
                         ?? throw new InvalidDataException($"checkpoint file '{data.Path}' has no tensor '{key}' that its manifest entry promises");
            if (layout.Type != ScalarType.Float32)
                throw new InvalidDataException($"checkpoint file '{data.Path}': tensor '{key}' is {IO.SafeTensors.DTypeName(layout.Type)}, not F32");
            if (layout.Numel != piece.Length)
                throw new InvalidDataException($"checkpoint file '{data.Path}': tensor '{key}' has {layout.Numel} elements, the manifest says {piece.Length}");
            long s = Math.Max(start, piece.Start), e = Math.Min(end, piece.Start + piece.Length);
            if (e <= s) continue;
            data.ReadFloats(key, s - piece.Start, destination.Slice((int)(s - start), (int)(e - s)));
            covered += e - s;
        }
        if (covered != length)
            throw new InvalidDataException($"checkpoint '{files.TagDirectory}' holds {covered} of the {length} elements of '{Kind}' in flat range [{start}, {end}) of model-parallel rank {Shard.MpRank} (a missing shard?)");
    }

    /// <summary>The index of the first piece that ends after <paramref name="start"/> (binary search).</summary>
    private int FirstEndingAfter(long start)
    {
        int lo = 0, hi = pieces.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (pieces[mid].Piece.Start + pieces[mid].Piece.Length <= start) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
