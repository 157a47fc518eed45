using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Engine;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// Single-process checkpoint behaviour: exact resume for every optimizer the config can build and for stages 0–2,
/// atomic replacement, latest handling, client state, and corruption that names the file and changes nothing.
/// </summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public class CheckpointUnitTests
{
    private static string Optimizer(string kind) => kind switch
    {
        "fused" => """{"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.01}}""",
        "torch_adamw" => """{"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.01, "torch_adam": true}}""",
        "torch_adam" => """{"type": "Adam", "params": {"lr": 0.01, "adam_w_mode": false, "torch_adam": true}}""",
        "sgd" => """{"type": "SGD", "params": {"lr": 0.05, "momentum": 0.9}}""",
        _ => throw new ArgumentException(kind),
    };

    private static string Config(string optimizer, int stage) => $$"""
        { "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2, "optimizer": {{Optimizer(optimizer)}},
          "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.01, "warmup_num_steps": 4 } },
          "zero_optimization": { "stage": {{stage}} } }
        """;

    private static Sequential Model(int seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 3));
    }

    private static DeepSpeedEngine Build(nn.Module model, string config) => DeepSpeed.Initialize(model, config: config, seed: 7).Engine;

    /// <summary>Trains <paramref name="steps"/> optimizer steps from <paramref name="first"/>; returns the per-micro-step losses.</summary>
    private static List<float> Train(DeepSpeedEngine e, int first, int steps)
    {
        var losses = new List<float>();
        for (int s = first; s < first + steps; s++)
            for (int m = 0; m < 2; m++)
            {
                using var scope = NewDisposeScope();
                var g = new Generator((ulong)(1000 + s * 2 + m));
                var x = randn(4, 6, generator: g);
                var y = randn(4, 3, generator: g);
                var loss = nn.functional.mse_loss(e.Forward(x), y);
                losses.Add(loss.item<float>());
                e.Backward(loss);
                e.Step();
            }
        return losses;
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("dss-ckpt").FullName;

    [Theory]
    [InlineData("fused", 0)]
    [InlineData("fused", 1)]
    [InlineData("fused", 2)]
    [InlineData("torch_adamw", 0)]
    [InlineData("torch_adam", 1)]
    [InlineData("sgd", 0)]
    public void ResumeGivesBitIdenticalLosses(string optimizer, int stage)
    {
        var dir = TempDir();
        var config = Config(optimizer, stage);
        var a = Build(Model(1), config);
        Train(a, 0, 3);
        Assert.True(a.SaveCheckpoint(dir, clientState: new { epoch = 2, note = "x" }));
        var expected = Train(a, 3, 3);

        var b = Build(Model(99), config); // different initial weights: everything must come from the checkpoint
        var (path, client) = b.LoadCheckpoint(dir);
        Assert.Equal(Path.Combine(dir, "global_step3"), path);
        Assert.Equal(2, client!["epoch"]!.GetValue<int>());
        Assert.Equal(3, b.GlobalSteps);
        Assert.Equal(6, b.MicroSteps);
        Assert.Equal(a.GetLr().Count, b.GetLr().Count);
        var actual = Train(b, 3, 3);
        Assert.Equal(expected, actual); // bit-identical (dropout too: the RNG state is restored)
    }

    [Fact]
    public void LoadAcrossStagesInOneProcessKeepsOptimizerState()
    {
        var dir = TempDir();
        var a = Build(Model(1), Config("fused", 0));
        Train(a, 0, 3);
        a.SaveCheckpoint(dir);
        var expected = Train(a, 3, 3);
        var b = Build(Model(5), Config("fused", 2));
        b.LoadCheckpoint(dir);
        var actual = Train(b, 3, 3);
        for (int i = 0; i < expected.Count; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6, $"loss {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void MissingLatestReturnsNullsAndSavingReplacesATagAtomically()
    {
        var dir = TempDir();
        var e = Build(Model(1), Config("fused", 1));
        var (path, client) = e.LoadCheckpoint(dir);
        Assert.Null(path);
        Assert.Null(client);
        Train(e, 0, 1);
        e.SaveCheckpoint(dir, tag: "best");
        e.SaveCheckpoint(dir, tag: "best", saveLatest: false);
        Assert.Equal("best", File.ReadAllText(Path.Combine(dir, "latest")));
        Assert.Equal(new[] { "best", "latest" }, Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order());
        Assert.Throws<ArgumentException>(() => e.SaveCheckpoint(dir, tag: "../escape"));
        var report = CheckpointInspector.Inspect(dir, null, out bool ok);
        Assert.True(ok, report);
        Assert.Contains("data-parallel size 1, model-parallel size 1; ZeRO stage 1, global steps 1", report);
    }

    public static TheoryData<string, string> Corruptions => new()
    {
        { "truncate", "truncated" },
        { "flip", "altered" },
        { "delete", "missing" },
        { "manifest", "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void CorruptCheckpointNamesTheFileAndChangesNothing(string corruption, string expectedWords)
    {
        var dir = TempDir();
        var a = Build(Model(1), Config("fused", 1));
        Train(a, 0, 2);
        a.SaveCheckpoint(dir);
        var tagDir = Path.Combine(dir, "global_step2");
        var shard = Path.Combine(tagDir, "zero_pp_rank_0_mp_rank_00_optim_states.safetensors");
        switch (corruption)
        {
            case "truncate": using (var f = new FileStream(shard, FileMode.Open)) f.SetLength(f.Length - 100); break;
            case "flip":
                var bytes = File.ReadAllBytes(shard);
                bytes[^5] ^= 0x40;
                File.WriteAllBytes(shard, bytes);
                break;
            case "delete": File.Delete(shard); break;
            case "manifest": File.WriteAllText(Path.Combine(tagDir, CheckpointManifest.FileName), "{ broken"); break;
        }
        var b = Build(Model(2), Config("fused", 1));
        Train(b, 0, 1);
        var before = Snapshot(b);
        var e = Assert.ThrowsAny<Exception>(() => b.LoadCheckpoint(dir));
        Assert.IsType<InvalidDataException>(e);
        Assert.Contains(corruption == "manifest" ? CheckpointManifest.FileName : "zero_pp_rank_0_mp_rank_00_optim_states.safetensors", e.Message);
        Assert.Contains(expectedWords, e.Message);
        Assert.Equal(before, Snapshot(b));
        Assert.Equal(1, b.GlobalSteps);
        CheckpointInspector.Inspect(dir, null, out bool ok);
        Assert.False(ok);
    }

    [Fact]
    public void MismatchedModelIsRejectedWithTheParameterName()
    {
        var dir = TempDir();
        var a = Build(Model(1), Config("fused", 0));
        Train(a, 0, 1);
        a.SaveCheckpoint(dir);
        torch.manual_seed(3);
        var other = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 4));
        var b = Build(other, Config("fused", 0));
        var e = Assert.Throws<InvalidDataException>(() => b.LoadCheckpoint(dir));
        Assert.Contains("'3.weight' has shape [3, 16] in the checkpoint, the model needs [4, 16]", e.Message);
    }

    private static float[] Snapshot(DeepSpeedEngine e) =>
        e.Module.parameters().SelectMany(p => p.detach().flatten().data<float>().ToArray())
            .Concat(OptimizerStateAccess.States(e.Optimizer!).Values.SelectMany(s => OptimizerStateAccess.Tensors(s)
                .SelectMany(t => t.Value.flatten().data<float>().ToArray()))).ToArray();
}
