using DeepSpeedSharp.IO;
using DeepSpeedSharp.Samples.Gpt;
using DeepSpeedSharp.Samples.Gpt.Model;
using DeepSpeedSharp.Tests.Infrastructure;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// The GPT sample split into pipeline stages (<c>--pipeline-model-parallel-size</c>) under `dss launch` against the
/// independent plain TorchSharp loop on the unsplit model (<see cref="PlainGptReference"/>), 100 steps from the same seed
/// at the same global batch (8 = micro-batch 2 × 4 micro-batches): 2 stages, 4 stages, and 2 stages × 2 data-parallel
/// replicas under ZeRO-1. Also: the layer list and its name mapping cover GptModel exactly, weights loaded with
/// --init-weights reach the stages and come back out through --save-weights unchanged, a checkpoint of two stages
/// resumes on four, and the flags that do not work with a pipeline are one-line errors.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class GptPipelineTests(ITestOutputHelper output)
{
    // Six pipeline layers (embedding, four blocks, head): enough for four stages.
    private const string Model = "--vocab 64 --d-model 32 --layers 4 --heads 2 --seq 16";
    private static readonly GptConfig Shape = new(Vocab: 64, DModel: 32, Layers: 4, Heads: 2, Seq: 16);
    private const int Steps = 100, GlobalBatch = 8, Micro = 2;

    private static readonly Lazy<PlainGptRun> Reference = new(() => PlainGptReference.Train(Model, GlobalBatch, Micro, Steps));

    private static string Config(int zeroStage, bool bf16 = false) => $$"""
        { "train_batch_size": {{GlobalBatch}}, "train_micro_batch_size_per_gpu": {{Micro}}, "steps_per_print": 1000,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "bf16": { "enabled": {{(bf16 ? "true" : "false")}} },
          "zero_optimization": { "stage": {{zeroStage}} } }
        """;

    [Fact]
    public void TheBf16OptimizerOnTwoStagesFollowsTheFp32Reference()
    {
        // DeepSpeed's BF16 optimizer (bf16 model, fp32 master weights and fp32 gradient accumulation) on ZeRO-1 × 2 stages.
        var run = GptRun.Train(4, Config(1, bf16: true), Steps, "--pipeline-model-parallel-size 2", Model);
        double diff = PlainGptReference.MaxDifference(Reference.Value, run);
        output.WriteLine($"bf16, pp 2 × dp 2, ZeRO-1: max |Δloss| against the fp32 reference over {Steps} steps = {diff:E2}");
        Assert.True(diff <= 2e-2, $"the bf16 pipeline's losses differ from the fp32 reference by {diff}");
    }

    [Theory]
    [InlineData(2, 2, 0)] // two stages
    [InlineData(4, 4, 0)] // four stages
    [InlineData(4, 2, 1)] // two stages × two data-parallel replicas, ZeRO-1
    public void PipelineStagesFollowThePlainUnsplitModel(int ranks, int stages, int zeroStage)
    {
        var reference = Reference.Value;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = GptRun.Train(ranks, Config(zeroStage), Steps, $"--pipeline-model-parallel-size {stages}", Model);
        double diff = PlainGptReference.MaxDifference(reference, run);
        output.WriteLine($"pp {stages} × dp {ranks / stages}, ZeRO-{zeroStage}: max |Δloss| over {Steps} steps = {diff:E2} " +
                         $"(loss {reference.Losses[0]:F4} → {reference.Losses[^1]:F4}), {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(diff <= 1e-4, $"the pipeline's losses differ from the plain reference by {diff}");
        Assert.True(reference.Losses[^10..].Average() < reference.Losses[..10].Average() - 0.3, "the model must learn");
        Assert.Contains($"pipeline {stages} stages × data {ranks / stages}", run.Output);
        Assert.Contains($"\"pipeline_parallel_size\":{stages}", run.Output);
        Assert.Contains("\"bubble_idle\":", run.Output);
        // Rank 0 holds only its stage: clearly less than the whole model.
        if (zeroStage == 0) Assert.True(run.ParameterBytes < Shape.ParameterCount * 4 * 3 / 4, $"rank 0 holds {run.ParameterBytes} parameter bytes of {Shape.ParameterCount * 4}");
    }

    [Fact]
    public void ACheckpointOfTwoStagesResumesOnFourStages()
    {
        var dir = Directory.CreateTempSubdirectory("dss-gptpipeck").FullName;
        var full = GptRun.Train(2, Config(1), 12, $"--pipeline-model-parallel-size 2 --save-dir {dir} --save-every 6", Model);
        var resumed = GptRun.Train(4, Config(1), 12, $"--pipeline-model-parallel-size 4 --resume {Path.Combine(dir, "global_step6")}", Model);
        Assert.True(resumed.Losses.Length == 6, $"the resumed run logged {resumed.Losses.Length} steps: {resumed.Output}");
        double diff = full.Losses[6..].Zip(resumed.Losses, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"2 stages saved at step 6, resumed on 4 stages: max |Δloss| over steps 7–12 = {diff:E2}");
        Assert.True(diff <= 1e-5, $"the resumed run's losses differ from the uninterrupted run's by {diff}");
        Assert.Contains("layer_01-model_00-model_states.safetensors", Directory.GetFiles(Path.Combine(dir, "global_step6")).Select(Path.GetFileName));
    }

    [Fact]
    public void InitWeightsReachTheStagesAndSaveWeightsCollectsThem()
    {
        var dir = Directory.CreateTempSubdirectory("dss-gptpipe").FullName;
        string init = Path.Combine(dir, "init.safetensors"), saved = Path.Combine(dir, "saved.safetensors");
        torch.manual_seed(7);
        using var model = new GptModel(Shape);
        ModuleWeights.Save(model, init);
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", 2,
            $"{Model} --steps 0 --pipeline-model-parallel-size 2 --init-weights {init} --save-weights {saved}", dir);
        Assert.True(code == 0, stdout + stderr);
        torch.manual_seed(8);
        using var back = new GptModel(Shape);
        ModuleWeights.Load(back, saved);
        foreach (var ((name, a), (_, b)) in model.named_parameters().Zip(back.named_parameters()))
            Assert.True(a.eq(b).all().item<bool>(), $"{name} did not come back unchanged");
    }

    [Fact]
    public void TheLayerListAndItsNamesCoverTheModel()
    {
        var layers = new GptPipeLayers(Shape);
        var specs = layers.Specs();
        Assert.Equal(Shape.Layers + 2, specs.Count);
        var pipelineShapes = new Dictionary<string, long[]>();
        for (int i = 0; i < specs.Count; i++)
        {
            using var layer = specs[i].Build();
            Assert.Equal(layer.parameters().Sum(p => p.numel()), specs[i].TrainableParameterCount);
            foreach (var (name, p) in layer.named_parameters()) pipelineShapes[$"{i}.{name}"] = p.shape;
        }
        using var model = new GptModel(Shape);
        var mapped = model.named_parameters().ToDictionary(p => layers.ToPipelineName(p.name), p => p.parameter.shape);
        Assert.Equal(pipelineShapes.Keys.Order(), mapped.Keys.Order());
        foreach (var (name, shape) in mapped) Assert.Equal(pipelineShapes[name], shape);
        Assert.Equal("3.attn.c_attn.weight", layers.ToPipelineName("transformer.h.2.attn.c_attn.weight"));
        Assert.Equal("5.lm_head.weight", layers.ToPipelineName("lm_head.weight"));
        Assert.Throws<ArgumentException>(() => layers.ToPipelineName("transformer.h.4.ln_1.weight"));
    }

    [Theory]
    [InlineData("--pipeline-model-parallel-size 2 --zero-init", "--zero-init")]
    [InlineData("--pipeline-model-parallel-size 5 --layers 2", "--pipeline-model-parallel-size 5 needs at least 5 pipeline layers")]
    [InlineData("--pipeline-model-parallel-size 0", "--pipeline-model-parallel-size needs a positive integer, got '0'")]
    public void FlagsThatDoNotWorkWithAPipelineAreOneLineErrors(string args, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => GptOptions.Parse(args.Split(' ')));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
