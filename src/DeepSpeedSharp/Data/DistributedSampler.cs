using System.Collections;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Data;

/// <summary>Where a <see cref="DistributedSampler"/> is: its epoch and how many of this epoch's indices were handed out.</summary>
/// <param name="Epoch">The epoch (the shuffle's seed is the sampler's seed + epoch).</param>
/// <param name="Position">Indices of this rank's epoch already handed out; a resumed sampler continues after them.</param>
public sealed record SamplerState(long Epoch, long Position);

/// <summary>
/// PyTorch's <c>torch.utils.data.DistributedSampler</c>: the indices of one data-parallel rank's shard of a dataset. Each
/// epoch the dataset's indices are shuffled (with <c>randperm</c> seeded by seed + epoch, as PyTorch does, so every rank
/// draws the same permutation), then either padded by repeating indices from the start so that every rank gets the same
/// number of samples, or, with <c>dropLast</c>, cut to a multiple of the number of replicas. Rank r takes every
/// numReplicas-th index starting at r. Unlike PyTorch's, the sampler also knows how far the current epoch has been read
/// (<see cref="Position"/>), so training resumed from a checkpoint continues mid-epoch (<see cref="State"/>, <see cref="LoadState"/>).
/// </summary>
public sealed class DistributedSampler : IEnumerable<long>
{
    private long[]? _indices;
    private long _indicesEpoch = -1;

    /// <summary>Creates the sampler of <paramref name="rank"/> among <paramref name="numReplicas"/> data-parallel ranks.</summary>
    /// <param name="datasetLength">Number of samples in the dataset (at least 1).</param>
    /// <param name="numReplicas">Number of data-parallel ranks sharing the dataset.</param>
    /// <param name="rank">This rank, 0..numReplicas-1.</param>
    /// <param name="shuffle">Shuffle every epoch (PyTorch's default) rather than keep the dataset's order.</param>
    /// <param name="seed">Seed of the shuffle; must be the same on every rank.</param>
    /// <param name="dropLast">Drop the tail that does not divide evenly among the ranks instead of padding with repeated samples.</param>
    public DistributedSampler(long datasetLength, int numReplicas, int rank, bool shuffle = true, long seed = 0, bool dropLast = false)
    {
        if (datasetLength < 1) throw new ArgumentException($"DistributedSampler: the dataset is empty (length {datasetLength}).", nameof(datasetLength));
        if (numReplicas < 1) throw new ArgumentException($"DistributedSampler: numReplicas must be at least 1, got {numReplicas}.", nameof(numReplicas));
        if (rank < 0 || rank >= numReplicas) throw new ArgumentException($"DistributedSampler: rank {rank} is outside 0..{numReplicas - 1}.", nameof(rank));
        DatasetLength = datasetLength;
        NumReplicas = numReplicas;
        Rank = rank;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        NumSamples = dropLast && datasetLength % numReplicas != 0
            ? (datasetLength - numReplicas + numReplicas - 1) / numReplicas   // PyTorch: ceil((n - replicas) / replicas)
            : (datasetLength + numReplicas - 1) / numReplicas;
        if (NumSamples < 1)
            throw new ArgumentException($"DistributedSampler: {datasetLength} samples among {numReplicas} ranks with dropLast leaves none per rank.", nameof(datasetLength));
    }

    /// <summary>Number of samples in the dataset.</summary>
    public long DatasetLength { get; }

    /// <summary>Number of data-parallel ranks.</summary>
    public int NumReplicas { get; }

    /// <summary>This rank.</summary>
    public int Rank { get; }

    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>The shuffle's seed (the epoch is added to it).</summary>
    public long Seed { get; }

    /// <summary>Whether the uneven tail is dropped (otherwise it is padded with repeated samples).</summary>
    public bool DropLast { get; }

    /// <summary>Samples this rank gets per epoch (the same on every rank).</summary>
    public long NumSamples { get; }

    /// <summary>Samples all ranks get per epoch: <see cref="NumSamples"/> × <see cref="NumReplicas"/>.</summary>
    public long TotalSize => NumSamples * NumReplicas;

    /// <summary>The current epoch.</summary>
    public long Epoch { get; private set; }

    /// <summary>How many of this epoch's indices were handed out (see <see cref="Advance"/>).</summary>
    public long Position { get; private set; }

    /// <summary>The epoch and position, to save with a checkpoint.</summary>
    public SamplerState State => new(Epoch, Position);

    /// <summary>PyTorch's <c>set_epoch</c>: selects the epoch's shuffle and starts it from its beginning.</summary>
    public void SetEpoch(long epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), $"DistributedSampler: epoch must be non-negative, got {epoch}.");
        Epoch = epoch;
        Position = 0;
    }

    /// <summary>Continues from a saved <see cref="State"/>.</summary>
    public void LoadState(SamplerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Position < 0 || state.Position > NumSamples)
            throw new ArgumentException($"DistributedSampler: saved position {state.Position} is outside 0..{NumSamples} (was the dataset or the number of ranks changed?).", nameof(state));
        SetEpoch(state.Epoch);
        Position = state.Position;
    }

    /// <summary>Marks <paramref name="count"/> more of this epoch's indices as handed out (a loader calls it per batch).</summary>
    public void Advance(long count)
    {
        if (count < 0 || Position + count > NumSamples)
            throw new ArgumentOutOfRangeException(nameof(count), $"DistributedSampler: advancing {count} from position {Position} passes the epoch's {NumSamples} samples.");
        Position += count;
    }

    /// <summary>All of this rank's indices for the current epoch, in order (<see cref="NumSamples"/> of them).</summary>
    public IReadOnlyList<long> EpochIndices()
    {
        if (_indices == null || _indicesEpoch != Epoch)
        {
            _indices = ComputeIndices();
            _indicesEpoch = Epoch;
        }
        return _indices;
    }

    /// <summary>The indices of the current epoch not yet handed out (from <see cref="Position"/> on). Enumerating does not advance.</summary>
    public IEnumerator<long> GetEnumerator()
    {
        var indices = EpochIndices();
        for (long i = Position; i < indices.Count; i++) yield return indices[(int)i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private long[] ComputeIndices()
    {
        var order = Shuffle ? Permutation(DatasetLength, Seed + Epoch) : null;
        var mine = new long[NumSamples];
        for (long j = 0; j < NumSamples; j++)
        {
            long i = Rank + j * NumReplicas;   // position in the padded (or cut) list of TotalSize indices
            long source = i % DatasetLength;   // padding repeats the list from its start
            mine[j] = order == null ? source : order[source];
        }
        return mine;
    }

    /// <summary>torch.randperm(n) with a generator seeded with <paramref name="seed"/> (PyTorch's draw for the same seed).</summary>
    private static long[] Permutation(long n, long seed)
    {
        using var generator = new Generator((ulong)seed);
        using var perm = randperm(n, generator: generator, dtype: ScalarType.Int64);
        return perm.data<long>().ToArray();
    }
}
