using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>partition_activations across a real 2-rank model-parallel group (two TestWorker processes).</summary>
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
}
