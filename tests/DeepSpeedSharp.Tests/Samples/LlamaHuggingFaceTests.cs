using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Weights;
using DeepSpeedSharp.Weights;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// The LLaMA sample's <c>--hf-model DIR</c> on real processes: a Hugging Face directory written outside the engine
/// (plain TorchSharp weights in bf16, sharded with an index, config.json in LlamaConfig form) trains the same on one
/// process and at tensor 2 × data 2 under ZeRO-3 with zero.Init, where each rank reads only its partitions' bytes.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed partial class LlamaHuggingFaceTests(ITestOutputHelper output) : IDisposable
{
    private const int Steps = 4;
    private const string Optimizer = """ "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } }, "gradient_clipping": 0.5 """;
    private readonly string dir = Directory.CreateTempSubdirectory("dss-llama-hf").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>A LlamaForCausalLM directory: the sample's architecture with weights moved off its seeds, bf16, in 3 shards.</summary>
    private string ExternalDirectory(LlamaConfig shape)
    {
        var hf = Directory.CreateDirectory(Path.Combine(dir, "hf")).FullName;
        using var scope = NewDisposeScope();
        torch.manual_seed(5);
        using var model = new LlamaModel(shape, new LlamaLayers());
        var g = new Generator(77);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                tensors.Add(new(name, (p + randn(p.shape, generator: g) * 0.02).to(ScalarType.BFloat16)));
        HfTestDirectory.Write(hf, tensors, 3);
        HfLlamaConfig.Write(shape, Path.Combine(hf, HfLlamaConfig.FileName), "bfloat16");
        return hf;
    }

    private (double[] Losses, string Output) Run(string name, int ranks, string config, string args, int steps = Steps)
    {
        var runDir = Directory.CreateDirectory(Path.Combine(dir, name)).FullName;
        File.WriteAllText(Path.Combine(runDir, "ds.json"), config);
        var (code, stdout, stderr) = SampleProcess.Run("Llama.dll", ranks, $"--steps {steps} --seq 32 --deepspeed_config ds.json --loss-log loss.jsonl {args}", runDir);
        Assert.True(code == 0, $"{name} exited with {code}:\n{stdout}{stderr}");
        var losses = File.ReadAllLines(Path.Combine(runDir, "loss.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();
        return (losses, stdout + stderr);
    }

    private const string Zero3 = """ "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0 } """;

    private static string Plain(int micro) => $$"""{ "train_batch_size": 8, "train_micro_batch_size_per_gpu": {{micro}}, {{Optimizer}} }""";

    private static string ZeroThree(int micro) => $$"""{ "train_batch_size": 8, "train_micro_batch_size_per_gpu": {{micro}}, {{Optimizer}}, {{Zero3}} }""";

    [GeneratedRegex(@"llama: rank (\d+) loaded '[^']*': ([\d,]+) bytes read")]
    private static partial Regex LoadedLine();

    [Fact]
    public void AnExternalShardedDirectoryTrainsTheSameOnOneProcessAndAtTensorTwoZeroThreeWithZeroInit()
    {
        // The data's compact vocabulary has 2,143 ids; the directory has 2,150 rows (the sample's own data would pad to 2,144).
        var shape = new LlamaConfig(Vocab: 2150, DModel: 64, Layers: 2, Heads: 4, KvHeads: 2, Seq: 32);
        var hf = ExternalDirectory(shape);
        long fileBytes = shape.ParameterCount * 2;
        var one = Run("one", 1, Plain(8), $"--hf-model {hf}");
        var split = Run("tp2-z3", 4, ZeroThree(4), $"--hf-model {hf} --zero-init --tensor-model-parallel-size 2");

        double first = Math.Abs(one.Losses[0] - split.Losses[0]), all = one.Losses.Zip(split.Losses, (a, b) => Math.Abs(a - b)).Max();
        var reads = LoadedLine().Matches(split.Output).ToDictionary(m => int.Parse(m.Groups[1].Value), m => long.Parse(m.Groups[2].Value.Replace(",", "")));
        output.WriteLine($"one process {one.Losses[0]:F6} → {one.Losses[^1]:F6}; tensor 2 × ZeRO-3: step 1 {first:E2}, {Steps} steps {all:E2}; " +
                         $"bytes read per rank {string.Join(", ", reads.OrderBy(r => r.Key).Select(r => r.Value))} of {fileBytes}");
        Assert.Equal(Steps, split.Losses.Length);
        Assert.True(first <= 1e-6, $"step 1: {one.Losses[0]} vs {split.Losses[0]}");
        Assert.True(all <= 1e-5, $"{Steps} steps: {all:E2}");
        // Each rank reads only its quarter of every split tensor (tensor slice, then ZeRO-3 partition) and its half of
        // each replicated RMSNorm weight, so together the file once plus the norms once more.
        long norms = (2L * shape.Layers + 1) * shape.DModel * 2;
        Assert.Equal(4, reads.Count);
        Assert.Equal(fileBytes + norms, reads.Values.Sum());
        Assert.All(reads.Values, r => Assert.Equal((fileBytes - norms) / 4 + norms / 2, r));
        Assert.Contains($"vocab 2150", one.Output);
    }

    [Fact]
    public void APipelineTwoTensorTwoCheckpointExportedAsAHuggingFaceDirectoryLoadsTheSameOnOneProcessAndAtTensorTwoZeroThree()
    {
        // pp 2 × tp 2 trains 3 steps and saves; its checkpoint goes out as a sharded Hugging Face directory.
        var ckpt = Path.Combine(dir, "ckpt");
        var trained = Run("pp2-tp2", 4, Plain(2), $"--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2 --save-dir {ckpt} --save-every 3", steps: 3);
        var hf = Path.Combine(dir, "exported");
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = new DeepSpeedSharp.Cli.Commands.CheckpointExportCommand().Run([ckpt, "--format", "hf", "--out", hf, "--max-shard-size", "300KB"], o, e);
        Assert.True(code == 0, $"export: {o}{e}");
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(hf, WeightFiles.IndexFile)))!;
        Assert.True(index["weight_map"]!.AsObject().Select(kv => kv.Value!.GetValue<string>()).Distinct().Count() > 1, index.ToJsonString());
        Assert.Equal("float32", JsonNode.Parse(File.ReadAllText(Path.Combine(hf, HfLlamaConfig.FileName)))!["torch_dtype"]!.GetValue<string>());

        var one = Run("hf-one", 1, Plain(8), $"--hf-model {hf}", steps: 1);
        var split = Run("hf-tp2-z3", 4, ZeroThree(4), $"--hf-model {hf} --zero-init --tensor-model-parallel-size 2", steps: 1);
        var stages = Run("hf-pp2", 2, Plain(2), $"--hf-model {hf} --pipeline-model-parallel-size 2", steps: 1);
        output.WriteLine($"step 1 from the seeds {trained.Losses[0]:F6}; from the exported directory: one process {one.Losses[0]:F6}, " +
                         $"tensor 2 × ZeRO-3 {split.Losses[0]:F6} ({Math.Abs(one.Losses[0] - split.Losses[0]):E2}), " +
                         $"pipeline 2 {stages.Losses[0]:F6} ({Math.Abs(one.Losses[0] - stages.Losses[0]):E2})");
        Assert.True(Math.Abs(one.Losses[0] - split.Losses[0]) <= 1e-6, $"{one.Losses[0]} vs {split.Losses[0]}");
        Assert.True(Math.Abs(one.Losses[0] - stages.Losses[0]) <= 1e-6, $"{one.Losses[0]} vs {stages.Losses[0]}");
        // Each stage reads only its own tensors: together the file once.
        long total = index["metadata"]!["total_size"]!.GetValue<long>();
        var reads = LoadedLine().Matches(stages.Output).Select(m => long.Parse(m.Groups[2].Value.Replace(",", ""))).ToList();
        Assert.Equal(2, reads.Count);
        Assert.Equal(total, reads.Sum());
        Assert.All(reads, r => Assert.True(r < total * 3 / 4, $"a stage read {r} of {total} bytes"));
        // The directory holds the trained weights, which fit the first batch better than the seeds did.
        Assert.True(one.Losses[0] < trained.Losses[0] - 1e-3, $"from the directory {one.Losses[0]} vs from the seeds {trained.Losses[0]}");
    }
}
