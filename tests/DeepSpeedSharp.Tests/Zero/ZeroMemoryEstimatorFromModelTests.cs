using DeepSpeedSharp.Config;
using DeepSpeedSharp.Zero;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary><see cref="ZeroMemorySetup.FromModel"/>: the model's trainable parameters and largest tensor, then <see cref="ZeroMemorySetup.FromConfig"/>.</summary>
public class ZeroMemoryEstimatorFromModelTests
{
    [Fact]
    public void FromModelCountsTrainableParametersAndTheLargestThenDefersToFromConfig()
    {
        var config = DeepSpeedConfig.FromJson("""{ "bf16": { "enabled": true }, "zero_optimization": { "stage": 3 } }""");
        using var frozen = nn.Embedding(1000, 8); // 8,000 elements, the largest tensor, but not trained
        frozen.weight!.requires_grad = false;
        using var model = nn.Sequential(("emb", frozen), ("fc1", nn.Linear(8, 30)), ("fc2", nn.Linear(30, 5, hasBias: false)));
        // Trainable: fc1 8×30 + 30, fc2 30×5 = 240 + 30 + 150 = 420; the largest of them is fc1's weight (240).
        var setup = ZeroMemorySetup.FromModel(config, model, ranks: 4, nodes: 2);
        Assert.Equal(ZeroMemorySetup.FromConfig(config, 420, 240, ranks: 4, nodes: 2), setup);
        Assert.Equal(3, setup.Stage);
        Assert.Equal(2, setup.ModelBytes);
        Assert.Equal(ZeroMemoryEstimator.PerRank(ZeroMemorySetup.FromConfig(config, 420, 240, 4, 2)), ZeroMemoryEstimator.PerRank(setup));
    }

    [Fact]
    public void AModelWithoutTrainableParametersIsAnError()
    {
        using var model = nn.Linear(4, 4);
        foreach (var p in model.parameters()) p.requires_grad = false;
        var e = Assert.Throws<ArgumentException>(() => ZeroMemorySetup.FromModel(DeepSpeedConfig.FromJson("{}"), model, ranks: 1));
        Assert.Contains("no trainable parameters", e.Message);
    }
}
