using DeepSpeedSharp.IO;
using DeepSpeedSharp.Samples.Llama.Data;
using DeepSpeedSharp.Samples.Shared.Text;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Tests.Infrastructure;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// The LLaMA sample split into pipeline stages (<c>--pipeline-model-parallel-size</c>), alone and composed with tensor
/// parallelism on one grid, under `dss launch` against the unsplit model on one process, from the same seed on the
/// shipped text at the same global batch (8: micro-batch 4 × 2 unsplit, micro-batch 2 × 4 micro-batches through the
/// pipeline): pp 2, pp 4, pp 2 × tp 2, pp 2 × tp 2 × dp 2 (8 ranks), and pp 2 × tp 2 with sequence parallelism (whose activations differ across tensor ranks,
/// so the sample sends them between stages whole). Also: the layer list and its name mapping cover LlamaModel, and weights
/// given with --init-weights reach the stages and tensor slices (pp 2, tp 2, pp 2 × tp 2) and come back out through
/// --save-weights unchanged.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class LlamaPipelineTests(ITestOutputHelper output)
{
    // 8 query heads over 4 key/value heads, as the tensor-parallel tests; four pipeline layers (embedding, 2 blocks, head).
    private const string Model = "--d-model 32 --layers 2 --heads 8 --kv-heads 4 --seq 32";
    private const int Steps = 100;

    private static string Config(int micro) => $$"""
        { "train_batch_size": 8, "train_micro_batch_size_per_gpu": {{micro}}, "steps_per_print": 1000,
          "optimizer": { "type": "AdamW", "params": { "lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } } }
        """;

    private double Compare(string what, LlamaRun reference, LlamaRun run, TimeSpan time)
    {
        double diff = LlamaRun.MaxDifference(reference, run);
        output.WriteLine($"{what}: max |Δloss| over {Steps} steps = {diff:E2} (loss {run.Losses[0]:F4} → {run.Losses[^1]:F4}); " +
                         $"parameter bytes on rank 0 {run.ParameterBytes}; {time.TotalSeconds:F1} s");
        return diff;
    }

    private static (LlamaRun Run, TimeSpan Time) Timed(Func<LlamaRun> train)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = train();
        return (run, clock.Elapsed);
    }

    [Fact]
    public void PipelineAndPipelineByTensorRunsFollowTheUnsplitModel()
    {
        var single = LlamaRun.Train(1, Config(4), Steps, model: Model);
        var (pp2, t1) = Timed(() => LlamaRun.Train(2, Config(2), Steps, "--pipeline-model-parallel-size 2", Model));
        var (pp2Tp2, t2) = Timed(() => LlamaRun.Train(4, Config(2), Steps, "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2", Model));
        var (pp2Tp2Sp, t3) = Timed(() => LlamaRun.Train(4, Config(2), Steps, "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2 --sequence-parallel", Model));
        var (pp4, t4) = Timed(() => LlamaRun.Train(4, Config(2), Steps, "--pipeline-model-parallel-size 4", Model));
        var (pp2Tp2Dp2, t5) = Timed(() => LlamaRun.Train(8, Config(2), Steps, "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2", Model));
        Assert.True(Compare("pp 2", single, pp2, t1) <= 1e-4);
        Assert.True(Compare("pp 4", single, pp4, t4) <= 1e-4);
        Assert.True(Compare("pp 2 × tp 2 × dp 2 (8 ranks)", single, pp2Tp2Dp2, t5) <= 1e-4);
        Assert.True(Compare("pp 2 × tp 2", single, pp2Tp2, t2) <= 1e-4);
        Assert.True(Compare("pp 2 × tp 2 + sequence parallel", single, pp2Tp2Sp, t3) <= 1e-4);
        Assert.True(single.Losses[^1] < single.Losses[0] - 1.0, "the model must learn the text");

        Assert.Contains("global batch 8 (micro 2 × gas 4 × dp 1) × seq 32, pipeline 2 stages × tensor 2 × data 1", pp2Tp2.Output);
        Assert.Contains("pipe_partitioned and grad_partitioned set to false", pp2Tp2Sp.Output);
        Assert.DoesNotContain("pipe_partitioned", pp2Tp2.Output);
        // Rank 0 holds its stage only (about half the model), and of it only its tensor slice with tp 2.
        Assert.InRange(pp2.ParameterBytes, single.ParameterBytes / 4, single.ParameterBytes * 3 / 4);
        Assert.InRange(pp2Tp2.ParameterBytes, single.ParameterBytes / 8, single.ParameterBytes * 3 / 8);
    }

    [Theory]
    [InlineData(2, "--pipeline-model-parallel-size 2")]
    [InlineData(2, "--tensor-model-parallel-size 2")]
    [InlineData(4, "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2")]
    public void InitWeightsReachTheStagesAndSaveWeightsCollectsThem(int ranks, string layout)
    {
        var dir = Directory.CreateTempSubdirectory("dss-llamapipe").FullName;
        string init = Path.Combine(dir, "init.safetensors"), saved = Path.Combine(dir, "saved.safetensors");
        var shape = new LlamaConfig(Vocab: TextCorpus.Load(TextCorpus.DefaultPath, fullVocab: false).Vocabulary.PaddedSize,
            DModel: 32, Layers: 2, Heads: 8, KvHeads: 4, Seq: 32);
        torch.manual_seed(7);
        using var model = new LlamaModel(shape, new LlamaLayers());
        ModuleWeights.Save(model, init);
        var (code, stdout, stderr) = SampleProcess.Run("Llama.dll", ranks,
            $"{Model} --steps 0 {layout} --init-weights {init} --save-weights {saved}", dir);
        Assert.True(code == 0, stdout + stderr);
        torch.manual_seed(8);
        using var back = new LlamaModel(shape, new LlamaLayers());
        ModuleWeights.Load(back, saved);
        foreach (var ((name, a), (_, b)) in model.named_parameters().Zip(back.named_parameters()))
            Assert.True(a.eq(b).all().item<bool>(), $"{layout}: {name} did not come back unchanged");
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void TheLayerListAndItsNamesCoverTheModel()
    {
        var shape = new LlamaConfig(Vocab: 64, DModel: 32, Layers: 3, Heads: 4, KvHeads: 2, Seq: 16);
        var factory = new LlamaLayers();
        var layers = new LlamaPipeLayers(shape, factory);
        var specs = layers.Specs();
        Assert.Equal(shape.Layers + 2, specs.Count);
        var pipelineShapes = new Dictionary<string, long[]>();
        for (int i = 0; i < specs.Count; i++)
        {
            using var layer = specs[i].Build();
            Assert.Equal(layer.parameters().Sum(p => p.numel()), specs[i].TrainableParameterCount);
            foreach (var (name, p) in layer.named_parameters()) pipelineShapes[$"{i}.{name}"] = p.shape;
        }
        using var model = new LlamaModel(shape, factory);
        var mapped = model.named_parameters().ToDictionary(p => layers.ToPipelineName(p.name), p => p.parameter.shape);
        Assert.Equal(pipelineShapes.Keys.Order(), mapped.Keys.Order());
        foreach (var (name, s) in mapped) Assert.Equal(pipelineShapes[name], s);
        Assert.Equal("2.self_attn.q_proj.weight", layers.ToPipelineName("model.layers.1.self_attn.q_proj.weight"));
        Assert.Equal("4.norm.weight", layers.ToPipelineName("model.norm.weight"));
        Assert.Throws<ArgumentException>(() => layers.ToPipelineName("model.layers.3.mlp.up_proj.weight"));
    }
}
