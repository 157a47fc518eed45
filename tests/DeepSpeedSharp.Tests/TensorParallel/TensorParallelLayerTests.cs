using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.TensorParallel;

/// <summary>
/// The tensor-parallel layers and regions on real tensor groups of 2 and 4 processes: a tiny LM built from them gives
/// the loss of the same layers at tp = 1 from the same seed, and every gradient is the matching slice of the tp = 1
/// gradient — with and without sequence parallelism.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class TensorParallelLayerTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void ParallelLayersMatchTheUnsplitLayers(int ranks)
    {
        var results = RankProcesses.Run("tp-layers", ranks, [], new RankOptions { Timeout = TimeSpan.FromSeconds(120) });
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.Contains($"OK rank {r.Rank} tp {ranks}", r.Stdout));
    }

    [Fact]
    public void DropoutStreamsAgreeInReplicatedRegionsAndDifferInParallelOnes()
    {
        // 4 ranks as tensor 2 × data 2: the model-parallel RNG stream is seeded from the tensor rank.
        var results = RankProcesses.Run("rng-streams", 4, ["2"], new RankOptions { Timeout = TimeSpan.FromSeconds(120) });
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.Contains($"OK rank {r.Rank}", r.Stdout));
    }
}
