using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Tests.Checkpointing;
using TorchSharp;
using static DeepSpeedSharp.Tests.Checkpointing.CheckpointingTestUtil;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>The BERT sample's model: names, shapes, initialisation, bidirectional attention, the masked-LM loss, and the
/// checkpointed forward/backward against the plain one.</summary>
[Collection("Checkpointing")]
public class BertModelTests : CheckpointingTestBase
{
    private static readonly BertConfig Small = new(Vocab: 64, DModel: 32, Layers: 4, Heads: 4, Seq: 16);

    [Fact]
    public void ParameterNamesShapesAndCountAreBerts()
    {
        using var model = new BertForMaskedLM(Small);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new long[] { 64, 32 }, shapes["bert.embeddings.word_embeddings.weight"]);
        Assert.Equal(new long[] { 16, 32 }, shapes["bert.embeddings.position_embeddings.weight"]);
        Assert.Equal(new long[] { 32 }, shapes["bert.embeddings.LayerNorm.bias"]);
        Assert.Equal(new long[] { 32, 32 }, shapes["bert.encoder.layer.3.attention.query.weight"]);
        Assert.Equal(new long[] { 128, 32 }, shapes["bert.encoder.layer.0.intermediate.weight"]); // 4·d
        Assert.Equal(new long[] { 32, 128 }, shapes["bert.encoder.layer.0.output.weight"]);
        Assert.Equal(new long[] { 64, 32 }, shapes["cls.decoder.weight"]);
        Assert.Equal(new long[] { 64 }, shapes["cls.decoder.bias"]);
        Assert.Equal(Small.ParameterCount, model.parameters().Sum(p => p.numel()));
        using var logits = model.call(randint(0, 64, new long[] { 3, 16 }));
        Assert.Equal(new long[] { 3, 16, 64 }, logits.shape);
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.Equal(0.02, p["cls.decoder.weight"].std().item<float>(), 2);
        Assert.True(p["bert.encoder.layer.1.attention.query.bias"].eq(0).all().item<bool>());
        Assert.True(p["bert.encoder.layer.1.attention.LayerNorm.weight"].eq(1).all().item<bool>());
    }

    [Fact]
    public void ASeedFixesTheWeightsAndAttentionSeesLaterTokens()
    {
        manual_seed(11);
        using var a = new BertForMaskedLM(Small);
        manual_seed(11);
        using var b = new BertForMaskedLM(Small);
        Assert.All(a.parameters().Zip(b.parameters()), pair => Assert.True(pair.First.eq(pair.Second).all().item<bool>()));
        a.eval();
        var ids = randint(0, 64, new long[] { 1, 12 });
        var changed = ids.clone();
        changed[0, 8] = (ids[0, 8] + 1) % 64;
        using var la = a.call(ids);
        using var lb = a.call(changed);
        // Bidirectional: changing token 8 changes the outputs before it, unlike a causal decoder.
        Assert.False(la[.., ..8].allclose(lb[.., ..8], rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void TheLossCountsOnlyLabelledPositions()
    {
        var logits = randn(2, 3, 5);
        var labels = tensor(new long[] { -100, 4, -100, 1, -100, -100 }, new long[] { 2, 3 });
        using var loss = BertForMaskedLM.MaskedLmLoss(logits, labels);
        var flat = logits.view(6, 5).log_softmax(-1);
        double expected = -(flat[1, 4].item<float>() + flat[3, 1].item<float>()) / 2;
        Assert.Equal(expected, loss.item<float>(), 5);
        Assert.Equal(ScalarType.Float32, BertForMaskedLM.MaskedLmLoss(logits.to(ScalarType.BFloat16), labels).dtype);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void CheckpointedForwardAndBackwardEqualThePlainOnes(int interval)
    {
        using var scope = NewDisposeScope();
        var config = Small with { Dropout = 0.1 };
        manual_seed(3);
        using var model = new BertForMaskedLM(config);
        model.train();
        var input = randint(0, 60, new long[] { 3, 16 });
        var labels = where(rand(3, 16).lt(0.3), input, full_like(input, BertForMaskedLM.IgnoreIndex));
        labels[0, 1] = input[0, 1];

        (Dictionary<string, Tensor> grads, float loss) Run(int every)
        {
            model.zero_grad();
            model.CheckpointInterval = every;
            manual_seed(77); // the same dropout masks in both runs; checkpointing replays them in the recompute
            var loss = BertForMaskedLM.MaskedLmLoss(model.call(input), labels);
            loss.backward();
            return (Grads(model), loss.item<float>());
        }

        var plain = Run(0);
        long before = Ckpt.Stats.TotalCheckpoints;
        var checkpointed = Run(interval);
        Assert.Equal((4 + interval - 1) / interval, Ckpt.Stats.TotalCheckpoints - before); // chunks of `interval` layers
        Assert.Equal(plain.loss, checkpointed.loss);
        AssertBitIdentical(plain.grads, checkpointed.grads);
    }
}
