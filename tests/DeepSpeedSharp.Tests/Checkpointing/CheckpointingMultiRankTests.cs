using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>partition_activations across a real 2-rank model-parallel group (two TestWorker processes).</summary>
[Trait("Tier", "Full")]
public class CheckpointingMultiRankTests
{
    [Theory]
    [InlineData("")]
    [InlineData("cpu contiguous")]
    public void PartitionedInputsAreGatheredAndGradientsAreBitIdentical(string options)
    {
        var results = RankProcesses.Run("checkpointing-partition", 2, options.Split(' ', StringSplitOptions.RemoveEmptyEntries), new RankOptions { Timeout = TimeSpan.FromSeconds(90) });
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.Contains("OK rank", r.Stdout));
        Assert.All(results, r => Assert.Contains("share 33", r.Stdout));
    }

    [Fact]
    public void AGridPartitionsAcrossItsTensorGroupNotItsWholeModelGroup()
    {
        // 4 ranks as pipe 2 × tensor 2: the mpu's model group has 4 ranks, its tensor group 2 — DeepSpeed partitions
        // saved activations across the tensor group, so each rank keeps 33 of 65 elements, not 17.
        var results = RankProcesses.Run("checkpointing-partition", 4, ["grid"], new RankOptions { Timeout = TimeSpan.FromSeconds(120) });
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.Contains("OK rank", r.Stdout));
        Assert.All(results, r => Assert.Contains("mp 2 share 33", r.Stdout));
    }
}
