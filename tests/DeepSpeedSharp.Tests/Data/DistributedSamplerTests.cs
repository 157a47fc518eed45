using DeepSpeedSharp.Data;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Data;

/// <summary>
/// <see cref="DistributedSampler"/> against an independent computation written the way PyTorch's
/// <c>DistributedSampler.__iter__</c> is (permutation, list padding by repetition or truncation, stride by rank).
/// </summary>
public sealed class DistributedSamplerTests
{
    /// <summary>PyTorch's algorithm, step by step as in torch/utils/data/distributed.py.</summary>
    private static List<long> PyTorchShard(long n, int replicas, int rank, bool shuffle, long seed, long epoch, bool dropLast)
    {
        List<long> indices;
        if (shuffle)
        {
            using var g = new Generator((ulong)(seed + epoch));
            using var p = randperm(n, generator: g);
            indices = p.data<long>().ToList();
        }
        else indices = Enumerable.Range(0, (int)n).Select(i => (long)i).ToList();
        long numSamples = dropLast && n % replicas != 0 ? (long)Math.Ceiling((n - replicas) / (double)replicas) : (long)Math.Ceiling(n / (double)replicas);
        long totalSize = numSamples * replicas;
        if (!dropLast)
        {
            long padding = totalSize - indices.Count;
            if (padding <= indices.Count) indices.AddRange(indices.Take((int)padding).ToList());
            else
            {
                var repeated = Enumerable.Repeat(indices, (int)Math.Ceiling(padding / (double)indices.Count)).SelectMany(x => x).Take((int)padding).ToList();
                indices.AddRange(repeated);
            }
        }
        else indices = indices.Take((int)totalSize).ToList();
        Assert.Equal(totalSize, indices.Count);
        return indices.Where((_, i) => i % replicas == rank).ToList();
    }

    [Theory]
    [InlineData(10, 2, true, false)]
    [InlineData(11, 2, true, false)]
    [InlineData(11, 2, true, true)]
    [InlineData(7, 3, false, false)]
    [InlineData(7, 3, false, true)]
    [InlineData(2, 5, true, false)]     // more ranks than samples: padding repeats the list several times
    [InlineData(103, 4, true, true)]
    public void Shards_match_PyTorchs_algorithm_for_every_rank_and_epoch(long n, int replicas, bool shuffle, bool dropLast)
    {
        for (long epoch = 0; epoch < 3; epoch++)
        for (int rank = 0; rank < replicas; rank++)
        {
            var sampler = new DistributedSampler(n, replicas, rank, shuffle, seed: 42, dropLast);
            sampler.SetEpoch(epoch);
            Assert.Equal(PyTorchShard(n, replicas, rank, shuffle, 42, epoch, dropLast), sampler.ToList());
            Assert.Equal(sampler.NumSamples, sampler.EpochIndices().Count);
        }
    }

    [Fact]
    public void Seed_0_gives_PyTorchs_shards()
    {
        // PyTorch: torch.randperm(10, generator=torch.Generator().manual_seed(0)) is [4, 1, 7, 5, 3, 9, 0, 8, 6, 2],
        // so DistributedSampler(range(10), num_replicas=2, rank=r, seed=0) yields every second element from r.
        Assert.Equal([4L, 7, 3, 0, 6], new DistributedSampler(10, 2, 0, seed: 0).ToList());
        Assert.Equal([1L, 5, 9, 8, 2], new DistributedSampler(10, 2, 1, seed: 0).ToList());
    }

    [Fact]
    public void Padded_shards_cover_the_dataset_with_equal_lengths_and_dropped_shards_are_disjoint()
    {
        const int n = 23, replicas = 4;
        var padded = Enumerable.Range(0, replicas).Select(r => new DistributedSampler(n, replicas, r, seed: 7).ToList()).ToList();
        Assert.All(padded, s => Assert.Equal(6, s.Count));
        Assert.Equal(Enumerable.Range(0, n).Select(i => (long)i), padded.SelectMany(s => s).Distinct().Order());
        var dropped = Enumerable.Range(0, replicas).Select(r => new DistributedSampler(n, replicas, r, seed: 7, dropLast: true).ToList()).ToList();
        Assert.All(dropped, s => Assert.Equal(5, s.Count));
        Assert.Equal(20, dropped.SelectMany(s => s).Distinct().Count());
    }

    [Fact]
    public void The_shuffle_depends_on_seed_and_epoch_only()
    {
        var a = new DistributedSampler(100, 2, 0, seed: 1);
        var b = new DistributedSampler(100, 2, 0, seed: 1);
        Assert.Equal(a.ToList(), b.ToList());
        b.SetEpoch(1);
        Assert.NotEqual(a.ToList(), b.ToList());
        Assert.NotEqual(a.ToList(), new DistributedSampler(100, 2, 0, seed: 2).ToList());
        Assert.Equal(Enumerable.Range(0, 50).Select(i => 2L * i), new DistributedSampler(100, 2, 0, shuffle: false).ToList());
    }

    [Fact]
    public void A_saved_state_resumes_mid_epoch()
    {
        var sampler = new DistributedSampler(50, 2, 1, seed: 3);
        sampler.SetEpoch(2);
        var all = sampler.ToList();
        sampler.Advance(10);
        var state = sampler.State;
        Assert.Equal(new SamplerState(2, 10), state);
        var resumed = new DistributedSampler(50, 2, 1, seed: 3);
        resumed.LoadState(state);
        Assert.Equal(all.Skip(10), resumed.ToList());
    }

    [Fact]
    public void Mistakes_are_one_line_errors()
    {
        Assert.Contains("rank 2 is outside 0..1", Assert.Throws<ArgumentException>(() => new DistributedSampler(10, 2, 2)).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => new DistributedSampler(0, 2, 0)).Message);
        Assert.Contains("leaves none", Assert.Throws<ArgumentException>(() => new DistributedSampler(3, 4, 0, dropLast: true)).Message);
        var s = new DistributedSampler(10, 2, 0);
        Assert.Contains("outside 0..5", Assert.Throws<ArgumentException>(() => s.LoadState(new SamplerState(0, 9))).Message);
    }
}
