using DeepSpeedSharp.Samples.Llama.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>The LLaMA sample's model: parameter names and shapes, initialisation, attention against a hand-written reference, causality.</summary>
public class LlamaModelTests
{
    private static readonly LlamaConfig Small = new(Vocab: 64, DModel: 32, Layers: 2, Heads: 4, KvHeads: 2, Seq: 16);

    private static readonly string[] BlockWeights =
    {
        "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
        "self_attn.o_proj.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    };

    [Fact]
    public void ParameterNamesAndShapesAreHuggingFaceLlamas()
    {
        using var model = new LlamaModel(Small, new LlamaLayers());
        var expected = new List<string> { "model.embed_tokens.weight" };
        for (int i = 0; i < Small.Layers; i++) expected.AddRange(BlockWeights.Select(n => $"model.layers.{i}.{n}"));
        expected.AddRange(new[] { "model.norm.weight", "lm_head.weight" });
        Assert.Equal(expected, model.named_parameters().Select(p => p.name).ToList()); // construction order, no biases
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new long[] { 32, 32 }, shapes["model.layers.0.self_attn.q_proj.weight"]);  // [heads·hd, d]
        Assert.Equal(new long[] { 16, 32 }, shapes["model.layers.0.self_attn.k_proj.weight"]);  // [kvHeads·hd, d]: grouped-query
        Assert.Equal(new long[] { 96, 32 }, shapes["model.layers.1.mlp.gate_proj.weight"]);     // ⌈(2/3)·4·32⌉ → 96
        Assert.Equal(new long[] { 32, 96 }, shapes["model.layers.1.mlp.down_proj.weight"]);
        Assert.Equal(new long[] { 64, 32 }, shapes["lm_head.weight"]);                          // untied
        Assert.Equal(Small.ParameterCount, model.parameters().Sum(p => p.numel()));
        Assert.Equal(688, LlamaConfig.DefaultFfnHidden(256));
    }

    [Fact]
    public void EveryWeightIsOneNormalDrawInConstructionOrder()
    {
        // What a tensor-parallel LlamaLayers must reproduce: after manual_seed(s), the embedding, then per block q, k,
        // v, o, gate, up, down, then the LM head, each one N(0, 0.02) draw over the whole weight; RMSNorms are ones.
        torch.manual_seed(7);
        using var model = new LlamaModel(Small, new LlamaLayers());
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        torch.manual_seed(7);
        var order = new List<string> { "model.embed_tokens.weight" };
        for (int i = 0; i < Small.Layers; i++)
            order.AddRange(BlockWeights.Where(n => !n.Contains("layernorm")).Select(n => $"model.layers.{i}.{n}"));
        order.Add("lm_head.weight");
        foreach (var name in order)
        {
            using var expected = empty(p[name].shape).normal_(0.0, 0.02);
            Assert.True(expected.eq(p[name]).all().item<bool>(), $"{name} is not the next N(0, 0.02) draw");
        }
        Assert.Equal(0.02, p["model.embed_tokens.weight"].std().item<float>(), 2);
        foreach (var norm in p.Keys.Where(n => n.Contains("norm")))
            Assert.True(p[norm].eq(1).all().item<bool>(), norm);
    }

    [Fact]
    public void AttentionMatchesAHandWrittenReference()
    {
        var config = Small with { DModel = 16, Heads = 4, KvHeads = 2 };
        torch.manual_seed(3);
        using var attention = new LlamaAttention(config, new LlamaLayers());
        var w = attention.named_parameters().ToDictionary(x => x.name, x => x.parameter.detach());
        var x = randn(2, 5, 16);
        using var actual = attention.call(x);

        int heads = 4, kvHeads = 2, hd = 4;
        long b = 2, t = 5;
        Tensor Heads(Tensor y, int n) => y.view(b, t, n, hd).transpose(1, 2);
        var q = Rope(Heads(x.matmul(w["q_proj.weight"].t()), heads), hd);
        var k = Rope(Heads(x.matmul(w["k_proj.weight"].t()), kvHeads), hd);
        var v = Heads(x.matmul(w["v_proj.weight"].t()), kvHeads);
        var outputs = new List<Tensor>();
        for (int h = 0; h < heads; h++)
        {
            int g = h / (heads / kvHeads); // query heads 0,1 use kv head 0; 2,3 use kv head 1
            var scores = q[.., h].matmul(k[.., g].transpose(-2, -1)) / Math.Sqrt(hd);
            scores = scores.masked_fill(ones(t, t, ScalarType.Bool).triu(1), double.NegativeInfinity);
            outputs.Add(scores.softmax(-1).matmul(v[.., g]));
        }
        var expected = stack(outputs, 2).reshape(b, t, heads * hd).matmul(w["o_proj.weight"].t());
        Assert.True(expected.allclose(actual, rtol: 1e-4, atol: 1e-5), $"max |difference| {(expected - actual).abs().max().item<float>()}");
    }

    [Fact]
    public void LogitsDoNotDependOnLaterTokens()
    {
        torch.manual_seed(5);
        using var model = new LlamaModel(Small, new LlamaLayers());
        model.eval();
        var a = randint(0, 64, new long[] { 1, 12 });
        var changed = a.clone();
        changed[0, 8] = (a[0, 8] + 1) % 64;
        using var la = model.call(a);
        using var lb = model.call(changed);
        Assert.True(la[.., ..8].allclose(lb[.., ..8], rtol: 0, atol: 1e-6));
        Assert.False(la[.., 8..].allclose(lb[.., 8..], rtol: 0, atol: 1e-6));
    }

    /// <summary>RoPE written out pair by pair: channels (i, i + hd/2) rotated by position · 10000^(−2i/hd).</summary>
    private static Tensor Rope(Tensor x, int hd)
    {
        long t = x.shape[2];
        var angles = new float[t * hd / 2];
        for (int pos = 0; pos < t; pos++)
            for (int i = 0; i < hd / 2; i++)
                angles[pos * hd / 2 + i] = (float)(pos * Math.Pow(10000, -2.0 * i / hd));
        var a = tensor(angles, new long[] { t, hd / 2 });
        var (cos, sin) = (a.cos(), a.sin());
        var x1 = x[.., .., .., ..(hd / 2)];
        var x2 = x[.., .., .., (hd / 2)..];
        return cat(new[] { x1 * cos - x2 * sin, x2 * cos + x1 * sin }, -1);
    }
}
