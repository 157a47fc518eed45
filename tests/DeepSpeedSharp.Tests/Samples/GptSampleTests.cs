using DeepSpeedSharp.IO;
using DeepSpeedSharp.Samples.Gpt;
using DeepSpeedSharp.Samples.Gpt.Data;
using DeepSpeedSharp.Samples.Gpt.Model;
using DeepSpeedSharp.Tests.Infrastructure;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Samples;

[Trait("Tier", "Full")]
public class GptSampleTests
{
    private static readonly GptConfig Small = new(Vocab: 64, DModel: 32, Layers: 2, Heads: 2, Seq: 16);

    [Fact]
    public void ParameterNamesAreNanoGpts()
    {
        using var model = new GptModel(Small);
        var names = model.named_parameters().Select(p => p.name).ToList();
        var expected = new List<string> { "transformer.wte.weight", "transformer.wpe.weight" };
        for (int i = 0; i < 2; i++)
            foreach (var n in new[] { "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                                      "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias" })
                expected.Add($"transformer.h.{i}.{n}");
        expected.AddRange(new[] { "transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight" });
        Assert.Equal(expected.Order(), names.Order());
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new long[] { 96, 32 }, shapes["transformer.h.0.attn.c_attn.weight"]); // [out, in]
        Assert.Equal(new long[] { 64, 32 }, shapes["lm_head.weight"]);
    }

    [Fact]
    public void InitialisationFollowsTheSpecification()
    {
        torch.manual_seed(3);
        using var model = new GptModel(Small with { DModel = 128, Vocab = 512 });
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.Equal(0.0, p["transformer.h.0.attn.c_attn.bias"].abs().sum().item<float>());
        Assert.Equal(1.0, p["transformer.h.1.ln_2.weight"].mean().item<float>());
        Assert.Equal(1.0, p["transformer.ln_f.weight"].mean().item<float>());
        Assert.Equal(0.02, p["lm_head.weight"].std().item<float>(), 3);
        Assert.Equal(0.02, p["transformer.wte.weight"].std().item<float>(), 3);
    }

    [Fact]
    public void WeightsRoundTripThroughSafetensorsInFp32AndBf16()
    {
        var dir = Directory.CreateTempSubdirectory("dss-weights").FullName;
        torch.manual_seed(1);
        using var a = new GptModel(Small);
        torch.manual_seed(2);
        using var b = new GptModel(Small);
        ModuleWeights.Save(a, Path.Combine(dir, "a.safetensors"));
        ModuleWeights.Load(b, Path.Combine(dir, "a.safetensors"));
        foreach (var ((_, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.True(pa.eq(pb).all().item<bool>());

        ModuleWeights.Save(a, Path.Combine(dir, "a16.safetensors"), ScalarType.BFloat16);
        ModuleWeights.Load(b, Path.Combine(dir, "a16.safetensors"));
        foreach (var ((_, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.True(pa.to(ScalarType.BFloat16).to(ScalarType.Float32).eq(pb).all().item<bool>());
    }

    [Fact]
    public void MisShapedOrMissingWeightsAreNamedAndNothingIsChanged()
    {
        var dir = Directory.CreateTempSubdirectory("dss-weights").FullName;
        using var wide = new GptModel(Small with { DModel = 64 });
        string path = Path.Combine(dir, "wide.safetensors");
        ModuleWeights.Save(wide, path);
        using var model = new GptModel(Small);
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        var e = Assert.Throws<InvalidDataException>(() => ModuleWeights.Load(model, path));
        Assert.Contains("transformer.wte.weight", e.Message);
        Assert.Contains("[64, 64]", e.Message);
        Assert.All(model.parameters().Zip(before), x => Assert.True(x.First.eq(x.Second).all().item<bool>()));

        using var deeper = new GptModel(Small with { Layers = 3 });
        var e2 = Assert.Throws<InvalidDataException>(() => ModuleWeights.Load(deeper, Path.Combine(dir, "wide.safetensors")));
        Assert.Contains("missing tensor 'transformer.h.2.ln_1.weight'", e2.Message);
    }

    [Fact]
    public void SequentialSamplesFollowTheGlobalIndexFormula()
    {
        // Tokens 0,1,2,...: sample i starts at i·(T+1). Step 1 of a global batch 8 (2 ranks × gas 2 × mb 2),
        // rank 1, micro-step 1 takes samples 8 + (1·2 + 1)·2 = 14 and 15.
        var path = Path.Combine(Directory.CreateTempSubdirectory("dss-data").FullName, "tokens.bin");
        File.WriteAllBytes(path, Enumerable.Range(0, 5000).SelectMany(i => new[] { (byte)(i % 500 & 0xFF), (byte)((i % 500) >> 8) }).ToArray());
        var sampler = new BatchSampler(TokenCorpus.FromFile(path, 500), seq: 4, sequential: true, seed: 0);
        var (input, target) = sampler.MicroBatch(step: 1, dataParallelRank: 1, microStep: 1, microBatch: 2, gas: 2, globalBatch: 8);
        Assert.Equal(new long[] { 70, 71, 72, 73, 75, 76, 77, 78 }, input.data<long>().ToArray());
        Assert.Equal(new long[] { 71, 72, 73, 74, 76, 77, 78, 79 }, target.data<long>().ToArray());
    }

    [Fact]
    public void BadOptionsAndDataGiveClearErrors()
    {
        Assert.Contains("unknown option '--layer'", Assert.Throws<ArgumentException>(() => GptOptions.Parse(new[] { "--layer", "2" })).Message);
        Assert.Contains("--heads", Assert.Throws<ArgumentException>(() => GptOptions.Parse(new[] { "--d-model", "30", "--heads", "4" })).Message);
        Assert.Contains("--data-order", Assert.Throws<ArgumentException>(() => GptOptions.Parse(new[] { "--data-order=shuffled" })).Message);
        var o = GptOptions.Parse(new[] { "--deepspeed", "--local_rank=1", "--steps=5", "--seq", "32" });
        Assert.Equal(5, o.Steps);
        Assert.Equal(32, o.Model.Seq);
        var path = Path.Combine(Directory.CreateTempSubdirectory("dss-data").FullName, "big.bin");
        File.WriteAllBytes(path, new byte[] { 0, 0, 0xFF, 0xFF });
        Assert.Contains("not below --vocab", Assert.Throws<ArgumentException>(() => TokenCorpus.FromFile(path, 512)).Message);
    }

    [Fact]
    public void TrainingIsDeterministicAndTheLossFalls()
    {
        const string config = """
            { "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2, "steps_per_print": 10,
              "optimizer": { "type": "AdamW", "params": { "lr": 3e-3, "betas": [0.9, 0.95], "weight_decay": 0.01 } },
              "scheduler": { "type": "WarmupLR", "params": { "warmup_num_steps": 5, "warmup_type": "linear" } } }
            """;
        var first = GptRun.Train(1, config, steps: 40);
        var second = GptRun.Train(1, config, steps: 40);
        Assert.Contains("tokens/s", first.Output);
        Assert.Equal(40, first.Losses.Length);
        Assert.Equal(first.Losses, second.Losses); // bit for bit
        Assert.True(first.Losses[^5..].Average() < first.Losses[..5].Average() - 0.5,
            $"loss should fall: first {first.Losses[0]}, last {first.Losses[^1]}");
    }
}
