using System.Text.Json.Nodes;
using DeepSpeedSharp.Samples.Llama;
using DeepSpeedSharp.Samples.Llama.Model;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// The LLaMA sample's config.json in Hugging Face's LlamaConfig form: what it writes reads back as the same shape, a
/// transformers-style file (defaults left out) reads, and what the sample's model cannot be is refused in one line that
/// names the key, its value and the file.
/// </summary>
public sealed class HfLlamaConfigTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("dss-hfcfg").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string WithConfig(string name, JsonObject json)
    {
        var path = Directory.CreateDirectory(Path.Combine(dir, name)).FullName;
        File.WriteAllText(Path.Combine(path, HfLlamaConfig.FileName), json.ToJsonString());
        return path;
    }

    private static JsonObject Transformers() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["hidden_size"] = 256,
        ["intermediate_size"] = 688, ["num_attention_heads"] = 8, ["num_hidden_layers"] = 3, ["vocab_size"] = 32000,
        ["max_position_embeddings"] = 2048, ["torch_dtype"] = "bfloat16",
    };

    [Fact]
    public void WhatItWritesReadsBackAndATransformersFileReadsWithItsDefaults()
    {
        var shape = new LlamaConfig(Vocab: 2144, DModel: 96, Layers: 3, Heads: 6, KvHeads: 2, FfnHidden: 272, Seq: 64, RopeTheta: 500000, NormEps: 1e-6);
        var path = Directory.CreateDirectory(Path.Combine(dir, "own")).FullName;
        HfLlamaConfig.Write(shape, Path.Combine(path, HfLlamaConfig.FileName), "bfloat16");
        Assert.Equal(shape with { Seq = 32 }, HfLlamaConfig.Read(path, 32, 0.0));

        var read = HfLlamaConfig.Read(WithConfig("hf", Transformers()), 128, 0.1);
        Assert.Equal(new LlamaConfig(32000, 256, 3, 8, KvHeads: 8, FfnHidden: 688, Seq: 128, Dropout: 0.1, RopeTheta: 10000, NormEps: 1e-6), read);
    }

    [Theory]
    [InlineData("tie_word_embeddings", "true", "\"tie_word_embeddings\": true is not supported by the sample's LLaMA; it needs false")]
    [InlineData("hidden_act", "\"gelu\"", "\"hidden_act\": \"gelu\" is not supported by the sample's LLaMA; it needs \"silu\"")]
    [InlineData("rope_scaling", "{\"type\":\"linear\",\"factor\":2}", "\"rope_scaling\": {\"type\":\"linear\",\"factor\":2} is not supported")]
    [InlineData("model_type", "\"mistral\"", "\"model_type\": \"mistral\" is not supported by the sample's LLaMA; it needs \"llama\"")]
    [InlineData("num_hidden_layers", "\"3\"", "\"num_hidden_layers\" must be a positive integer, got \"3\"")]
    [InlineData("hidden_size", null, "has no \"hidden_size\" (a Hugging Face LlamaConfig has it)")]
    public void WhatTheModelCannotBeIsRefusedNamingKeyValueAndFile(string key, string? value, string expected)
    {
        var json = Transformers();
        if (value is null) json.Remove(key);
        else json[key] = JsonNode.Parse(value);
        var path = WithConfig(key, json);
        var e = Assert.ThrowsAny<Exception>(() => HfLlamaConfig.Read(path, 64, 0));
        Assert.Contains(expected, e.Message);
        Assert.Contains(Path.Combine(path, HfLlamaConfig.FileName), e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void TheSampleRefusesAContradictingShapeFlagALongSequenceAndAMissingConfig()
    {
        var path = WithConfig("flags", Transformers());
        Assert.Equal(256, LlamaOptions.Parse(["--hf-model", path, "--d-model", "256", "--seq", "64"]).Model.DModel);
        var e = Assert.Throws<ArgumentException>(() => LlamaOptions.Parse(["--hf-model", path, "--d-model", "512"]));
        Assert.Equal($"--d-model 512 contradicts '{Path.Combine(path, HfLlamaConfig.FileName)}' (256); --hf-model sets the shape, drop --d-model", e.Message);
        e = Assert.Throws<ArgumentException>(() => LlamaOptions.Parse(["--hf-model", path, "--seq", "4096"]));
        Assert.Contains("--seq 4096 is longer than max_position_embeddings 2048", e.Message);
        Assert.Throws<FileNotFoundException>(() => LlamaOptions.Parse(["--hf-model", dir]));
        e = Assert.Throws<ArgumentException>(() => LlamaOptions.Parse(["--hf-model", path, "--init-weights", "w.safetensors"]));
        Assert.Equal("--hf-model and --init-weights both give the weights; pass one", e.Message);
    }
}
