using DeepSpeedSharp.ActivationCheckpointing;
using DeepSpeedSharp.Config;
using TorchSharp;
using static DeepSpeedSharp.Tests.Checkpointing.CheckpointingTestUtil;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpointing;

[Collection("Checkpointing")]
public class CheckpointingConfigTests : CheckpointingTestBase
{

    private static DeepSpeedConfig Config(string section) =>
        DeepSpeedConfig.FromJson($$"""{ "train_micro_batch_size_per_gpu": 1, "activation_checkpointing": {{section}} }""");

    [Fact]
    public void ConfigureReadsTheSectionAndExplicitArgumentsWin()
    {
        var config = Config("""{ "partition_activations": true, "contiguous_memory_optimization": true, "number_checkpoints": 4, "profile": true }""");
        Assert.False(Ckpt.IsConfigured());
        Ckpt.Configure(null, config);
        Assert.True(Ckpt.IsConfigured());
        Assert.Equal(new CheckpointingSettings(PartitionActivations: true, ContiguousMemoryOptimization: true, NumberCheckpoints: 4, Profile: true), Ckpt.Settings);

        Ckpt.Configure(null, config, numCheckpoints: 12, profile: false, synchronize: true, checkpointInCpu: true);
        Assert.Equal(new CheckpointingSettings(true, true, true, 12, true, false), Ckpt.Settings);

        Ckpt.Configure(null); // no config: back to the defaults
        Assert.Equal(CheckpointingSettings.Defaults, Ckpt.Settings);
    }

    [Fact]
    public void MegatronStyleConfigGetsNumberCheckpointsFromTheCall()
    {
        // DeepSpeedExamples' Megatron config enables the contiguous buffer without number_checkpoints; Megatron passes
        // num_checkpoints=num_layers to configure, so the check happens after the overrides.
        var config = Config("""{ "partition_activations": true, "contiguous_memory_optimization": true, "cpu_checkpointing": true }""");
        var e = Assert.Throws<ArgumentException>(() => Ckpt.Configure(null, config));
        Assert.Contains("number_checkpoints", e.Message);
        Assert.False(Ckpt.IsConfigured()); // a rejected configuration changes nothing
        Ckpt.Configure(null, config, numCheckpoints: 24);
        Assert.Equal(24, Ckpt.Settings.NumberCheckpoints);
    }

    [Theory]
    [InlineData("""{ "contiguous_memory_optimization": true, "number_checkpoints": 2 }""", "contiguous_memory_optimization")]
    [InlineData("""{ "cpu_checkpointing": true }""", "cpu_checkpointing")]
    public void CombinationsDeepSpeedDoesNotSupportAreErrorsNamingTheKey(string section, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => Ckpt.Configure(null, Config(section)));
        Assert.Contains(key, e.Message);
        Assert.Contains("partition_activations", e.Message);
    }

    [Fact]
    public void SetNumLayersAndPartitionSwitch()
    {
        Ckpt.Configure(null, partitionActivations: true, contiguousCheckpointing: true, numCheckpoints: 2);
        Ckpt.SetNumLayers(6);
        Assert.Equal(6, Ckpt.Settings.NumberCheckpoints);
        Assert.Throws<ArgumentException>(() => Ckpt.SetNumLayers(0));
        Assert.Throws<ArgumentException>(() => Ckpt.PartitionActivationsInCheckpoint(false)); // contiguous needs partitioning
        Ckpt.Configure(null, partitionActivations: true);
        Ckpt.PartitionActivationsInCheckpoint(false);
        Assert.False(Ckpt.Settings.PartitionActivations);
    }

    [Fact]
    public void WarnsOnceWhenTheConfigAsksForCheckpointingButTheModelNeverCheckpoints()
    {
        Assert.False(Ckpt.WarnIfConfiguredButUnused(DeepSpeedConfig.Default)); // nothing asked for
        var config = Config("""{ "partition_activations": true }""");
        Assert.True(Ckpt.WarnIfConfiguredButUnused(config));
        Assert.False(Ckpt.WarnIfConfiguredButUnused(config)); // once

        StartAfresh();
        Ckpt.Configure(null); // an explicit configure also counts as asking
        Assert.True(Ckpt.WarnIfConfiguredButUnused(DeepSpeedConfig.Default));

        StartAfresh();
        using var scope = NewDisposeScope();
        var lin = nn.Linear(2, 2);
        Ckpt.Checkpoint(lin.call, randn(1, 2).requires_grad_(true)).sum().backward();
        Assert.False(Ckpt.WarnIfConfiguredButUnused(config)); // used: no warning
    }

    [Fact]
    public void ProfileRecordsForwardRecomputeAndBackwardPerCheckpoint()
    {
        Ckpt.Configure(null, profile: true);
        using var scope = NewDisposeScope();
        var stage = new Stage(8, 0.0);
        var x = randn(3, 8).requires_grad_(true);
        Ckpt.Checkpoint(stage.call, Ckpt.Checkpoint(stage.call, x)).sum().backward();
        var t = Ckpt.Timings;
        Assert.Equal(6, t.Count);
        var byCheckpoint = t.GroupBy(x => x.Checkpoint).ToList();
        Assert.Equal(2, byCheckpoint.Count);
        foreach (var g in byCheckpoint)
            Assert.Equal(new[] { "backward", "forward", "recompute" }, g.Select(x => x.Phase).Order());
        Assert.All(t, x => Assert.True(x.Milliseconds >= 0));
        // forward of the first checkpoint precedes the second's; backward runs in reverse order
        Assert.Equal(new[] { "forward", "forward", "recompute", "backward", "recompute", "backward" }, t.Select(x => x.Phase));
        Assert.True(t[2].Checkpoint > t[4].Checkpoint);
    }

    [Fact]
    public void SynchronizeMarksFourBoundariesPerCheckpoint()
    {
        using var scope = NewDisposeScope();
        var stage = new Stage(8, 0.0);
        var x = randn(3, 8).requires_grad_(true);
        long before = Ckpt.Stats.BoundarySyncs;
        Ckpt.Checkpoint(stage.call, x).sum().backward();
        Assert.Equal(before, Ckpt.Stats.BoundarySyncs); // off by default
        Ckpt.Configure(null, synchronize: true);
        Ckpt.Checkpoint(stage.call, x).sum().backward();
        Assert.Equal(before + 4, Ckpt.Stats.BoundarySyncs);
    }
}
