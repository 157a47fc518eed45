using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// The checkpoint-loading config keys in one process: <c>checkpoint.load_universal</c> reads <c>latest_universal</c>
/// first, and <c>zero_optimization.load_from_fp32_weights: false</c> rebuilds the master weights from the 16-bit
/// model weights instead of the saved fp32 masters.
/// </summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public class CheckpointConfigKeyTests
{
    private static string Config(string extra = "", string zeroExtra = "") => $$$"""
        { "train_micro_batch_size_per_gpu": 4, "optimizer": {"type": "AdamW", "params": {"lr": 0.01} }, {{{extra}}}
          "zero_optimization": { "stage": 1 {{{zeroExtra}}} } }
        """;

    private static DeepSpeedEngine Build(string config)
    {
        manual_seed(5);
        return DeepSpeed.Initialize(nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)), config: config, seed: 7).Engine;
    }

    private static void Steps(DeepSpeedEngine e, int steps)
    {
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var g = new Generator((ulong)(100 + s));
            var x = randn(4, 6, generator: g);
            var y = randn(4, 3, generator: g);
            var output = e.Forward(x);
            var loss = nn.functional.mse_loss(output.to(ScalarType.Float32), y);
            e.Backward(loss);
            e.Step();
        }
    }

    [Fact]
    public void LoadUniversalReadsLatestUniversalFirst()
    {
        var dir = Directory.CreateTempSubdirectory("dss-universal").FullName;
        using (var a = Build(Config()))
        {
            Steps(a, 1);
            a.SaveCheckpoint(dir, tag: "one");
            Steps(a, 2);
            a.SaveCheckpoint(dir, tag: "three"); // latest = three
        }
        File.WriteAllText(Path.Combine(dir, "latest_universal"), "one");

        using var plain = Build(Config());
        Assert.EndsWith("three", plain.LoadCheckpoint(dir).LoadPath);
        Assert.Equal(3, plain.GlobalSteps);

        using var universal = Build(Config("\"checkpoint\": {\"load_universal\": true},"));
        Assert.EndsWith("one", universal.LoadCheckpoint(dir).LoadPath);
        Assert.Equal(1, universal.GlobalSteps);

        File.Delete(Path.Combine(dir, "latest_universal")); // without it, 'latest' as usual
        using var fallback = Build(Config("\"checkpoint\": {\"load_universal\": true},"));
        Assert.EndsWith("three", fallback.LoadCheckpoint(dir).LoadPath);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LoadFromFp32WeightsFalseRebuildsMastersFromTheBf16Weights(bool fromFp32)
    {
        var dir = Directory.CreateTempSubdirectory("dss-fp32w").FullName;
        const string bf16 = "\"bf16\": {\"enabled\": true},";
        float[] saved;
        using (var a = Build(Config(bf16)))
        {
            Steps(a, 3);
            a.SaveCheckpoint(dir);
            saved = Master(a).data<float>().ToArray();
        }
        using var b = Build(Config(bf16, $", \"load_from_fp32_weights\": {(fromFp32 ? "true" : "false")}"));
        b.LoadCheckpoint(dir);
        var loaded = Master(b).data<float>().ToArray();
        var rounded = tensor(saved).to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray();
        Assert.Equal(fromFp32 ? saved : rounded, loaded);
        Assert.NotEqual(saved, rounded); // the masters carry more than bf16 precision, so the two modes differ
    }

    private static Parameter Master(DeepSpeedEngine e) => Assert.Single(e.Optimizer!.parameters());
}
