using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>ZeRO-3 over a model whose parameters all stay whole says why, instead of a bare "0 units".</summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class Zero3NothingPartitionedTests
{
    [Fact]
    public void AModelUnderThePersistenceThresholdIsReportedAsNotPartitionedWithTheFix()
    {
        var run = GptRun.Train(1, """
            { "train_batch_size": 2, "optimizer": { "type": "AdamW", "params": { "lr": 1e-3 } },
              "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 100000000 } }
            """, steps: 2);
        Assert.Contains("ZeRO-3: nothing is partitioned: all 29 parameters stay whole on every rank, as each is at most " +
                        "stage3_param_persistence_threshold (100000000 elements) or belongs to a module ZeRO-3 cannot hook", run.Output);
        Assert.Contains("lower the threshold (e.g. 0) to partition them", run.Output);
    }
}
