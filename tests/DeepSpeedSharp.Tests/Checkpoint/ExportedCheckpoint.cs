using System.Text.Json.Nodes;
using DeepSpeedSharp.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// A small checkpoint saved in-process for the export tests — Linear, BatchNorm1d (float32 buffers and the int64
/// <c>num_batches_tracked</c>), a frozen bias (saved with the buffers), Linear — trained 2 steps at ZeRO stage 1 — and
/// what torch makes of the same model: its state dict, each floating-point tensor converted with <c>Tensor.to</c>.
/// </summary>
internal static class ExportedCheckpoint
{
    private const string Config = """
        { "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1,
          "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
          "zero_optimization": { "stage": 1 } }
        """;

    /// <summary>Saves the checkpoint into a new directory; returns it and the trained model's state (name → tensor, owned by the caller).</summary>
    public static (string Dir, Dictionary<string, Tensor> State) Save()
    {
        var dir = Directory.CreateTempSubdirectory("dss-export").FullName;
        torch.manual_seed(3);
        var model = nn.Sequential(("fc1", nn.Linear(6, 40)), ("norm", nn.BatchNorm1d(40)), ("act", nn.Tanh()), ("fc2", nn.Linear(40, 3)));
        ((Linear)model[0]).bias!.requires_grad = false;
        var engine = DeepSpeed.Initialize(model, config: Config, seed: 7).Engine;
        for (int s = 0; s < 2; s++)
        {
            using var scope = NewDisposeScope();
            var g = new Generator((ulong)(200 + s));
            var loss = nn.functional.mse_loss(engine.Forward(randn(4, 6, generator: g)), randn(4, 3, generator: g));
            engine.Backward(loss);
            engine.Step();
        }
        Assert.True(engine.SaveCheckpoint(dir));
        var state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        engine.Dispose();
        return (dir, state);
    }

    /// <summary>The tensors torch's <c>.to(dtype)</c> makes of <paramref name="state"/> (floating-point ones; others as they are).</summary>
    public static Dictionary<string, Tensor> Converted(Dictionary<string, Tensor> state, ScalarType dtype) =>
        state.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to(dtype) : kv.Value.clone());

    /// <summary>Asserts that two sets of tensors have the same names, types, shapes and bytes.</summary>
    public static void AssertSameTensors(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual, string what)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            Assert.True(e.dtype == a.dtype, $"{what}: '{name}' is {a.dtype}, expected {e.dtype}");
            Assert.Equal(e.shape, a.shape);
            Assert.True(e.contiguous().bytes.SequenceEqual(a.contiguous().bytes), $"{what}: the bytes of '{name}' differ");
        }
    }

    /// <summary>Every tensor of the shard files of a Hugging Face directory (owned by the caller).</summary>
    public static Dictionary<string, Tensor> ReadDirectory(string dir, IEnumerable<string> files)
    {
        var all = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var file in files)
            foreach (var (name, t) in SafeTensors.Read(Path.Combine(dir, file), out var metadata))
            {
                Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, metadata);
                Assert.True(all.TryAdd(name, t), $"'{name}' is in more than one shard");
            }
        return all;
    }

    /// <summary>The index of a sharded Hugging Face directory: total_size and weight_map.</summary>
    public static (long TotalSize, Dictionary<string, string> WeightMap) ReadIndex(string dir)
    {
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json")))!.AsObject();
        var map = index["weight_map"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
        return (index["metadata"]!["total_size"]!.GetValue<long>(), map);
    }

    /// <summary>Disposes every tensor of the sets.</summary>
    public static void Dispose(params IEnumerable<Tensor>[] sets)
    {
        foreach (var set in sets)
            foreach (var t in set) t.Dispose();
    }
}
