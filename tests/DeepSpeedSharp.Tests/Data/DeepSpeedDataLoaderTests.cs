using DeepSpeedSharp.Data;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Data;

/// <summary><see cref="DeepSpeedDataLoader"/>: batches of the sampler's indices, epochs, drop_last and resuming.</summary>
public sealed class DeepSpeedDataLoaderTests
{
    /// <summary>A dataset whose sample i is (i, 10·i) so a batch shows which samples it holds.</summary>
    private static utils.data.Dataset<IList<Tensor>> Numbered(int n) =>
        utils.data.TensorDataset(arange(n, dtype: ScalarType.Int64), arange(n, dtype: ScalarType.Int64) * 10);

    private static List<long[]> Read(DeepSpeedDataLoader loader, int? take = null)
    {
        var batches = new List<long[]>();
        foreach (var batch in loader)
        {
            Assert.Equal(2, batch.Length);
            var ids = batch[0].data<long>().ToArray();
            Assert.Equal(ids.Select(i => i * 10), batch[1].data<long>().ToArray());
            batches.Add(ids);
            if (take is { } t && batches.Count == t) break;
        }
        return batches;
    }

    [Fact]
    public void Batches_follow_the_sampler_and_each_pass_is_the_next_epoch()
    {
        using var data = Numbered(21);
        var sampler = new DistributedSampler(21, 2, 1, seed: 5);
        var loader = new DeepSpeedDataLoader(data, 4, sampler);
        Assert.Equal(3, loader.Count);   // 11 samples: 4 + 4 + 3
        var expected0 = new DistributedSampler(21, 2, 1, seed: 5).ToList();
        var epoch0 = Read(loader);
        Assert.Equal([4, 4, 3], epoch0.Select(b => b.Length));
        Assert.Equal(expected0, epoch0.SelectMany(b => b));
        Assert.Equal(new SamplerState(1, 0), sampler.State);
        var expected1 = new DistributedSampler(21, 2, 1, seed: 5);
        expected1.SetEpoch(1);
        Assert.Equal(expected1.ToList(), Read(loader).SelectMany(b => b));
    }

    [Fact]
    public void Drop_last_skips_the_short_batch()
    {
        using var data = Numbered(21);
        var loader = new DeepSpeedDataLoader(data, 4, new DistributedSampler(21, 2, 0, seed: 5), dropLast: true);
        Assert.Equal(2, loader.Count);
        Assert.Equal([4, 4], Read(loader).Select(b => b.Length));
    }

    [Fact]
    public void A_loader_resumed_from_the_sampler_state_continues_where_the_first_stopped()
    {
        using var data = Numbered(40);
        var first = new DeepSpeedDataLoader(data, 3, new DistributedSampler(40, 2, 0, seed: 9));
        var whole = new DistributedSampler(40, 2, 0, seed: 9).ToList();
        var head = Read(first, take: 2).SelectMany(b => b).ToList();
        var state = first.Sampler.State;
        Assert.Equal(new SamplerState(0, 6), state);
        var sampler = new DistributedSampler(40, 2, 0, seed: 9);
        sampler.LoadState(state);
        var tail = Read(new DeepSpeedDataLoader(data, 3, sampler)).SelectMany(b => b);
        Assert.Equal(whole, head.Concat(tail));
    }

    [Fact]
    public void A_sampler_for_another_dataset_is_refused()
    {
        using var data = Numbered(10);
        var e = Assert.Throws<ArgumentException>(() => new DeepSpeedDataLoader(data, 2, new DistributedSampler(12, 2, 0)));
        Assert.Contains("10 samples but the sampler was made for 12", e.Message);
    }
}
