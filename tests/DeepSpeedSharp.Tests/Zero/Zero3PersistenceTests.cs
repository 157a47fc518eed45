using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Zero;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>
/// <c>stage3_param_persistence_threshold</c> and <c>stage3_model_persistence_threshold</c> together decide which
/// parameters ZeRO-3 keeps whole, as DeepSpeed's <c>mark_persistent_parameters</c> does: small parameters, in module
/// order, while their running total stays within the model threshold.
/// </summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public class Zero3PersistenceTests
{
    /// <summary>Parameter sizes in module order: 0.weight 48, 0.bias 6, 1.weight 24, 1.bias 4.</summary>
    private static (string[] Persistent, long ParameterBytes) Build(long paramThreshold, long? modelThreshold)
    {
        manual_seed(3);
        using var net = nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 4));
        var trainable = net.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        using var group = new SingleProcessGroup(0, TimeSpan.FromSeconds(5), new CommsLogger());
        var model = modelThreshold is { } m ? $", \"stage3_model_persistence_threshold\": {m}" : "";
        var config = DeepSpeedConfig.FromJson($$"""
            { "train_micro_batch_size_per_gpu": 1, "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": {{paramThreshold}} {{model}} } }
            """);
        using var strategy = new Zero3Strategy(net, trainable, ps => optim.SGD(ps, 0.1), group, config, new Dictionary<string, ZeroInit.PrePartitioned>());
        return (strategy.Parameters.Where(p => p.Persistent).Select(p => p.Name).ToArray(), strategy.StateBytes().Parameters);
    }

    [Fact]
    public void TheModelThresholdCapsTheTotalKeptWholeInModuleOrder()
    {
        Assert.Equal(["0.weight", "0.bias", "1.weight", "1.bias"], Build(100, null).Persistent);
        // 48 + 6 = 54 fits in 60; 1.weight (24) would exceed it and is skipped; 1.bias (4) still fits (58), as in DeepSpeed.
        Assert.Equal(["0.weight", "0.bias", "1.bias"], Build(100, 60).Persistent);
        Assert.Equal(["0.bias", "1.weight", "1.bias"], Build(30, null).Persistent);
        Assert.Equal(["0.bias", "1.bias"], Build(30, 10).Persistent);
        Assert.Empty(Build(100, 0).Persistent);
    }

    [Fact]
    public void ParametersKeptWholeCostTheirFullSizeOnEveryRank()
    {
        // Persistent parameters hold their whole value besides the master partition.
        var all = Build(100, null).ParameterBytes;
        var none = Build(100, 0).ParameterBytes;
        Assert.Equal((48 + 6 + 24 + 4) * 4, all - none);
    }
}
