using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Engine;

/// <summary>
/// The plain TorchSharp reference (<see cref="PlainGptReference"/>) against the sample trained by the engine in one
/// process: they must agree before the multi-rank tests may compare against the reference.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class PlainReferenceTests(ITestOutputHelper output)
{
    private static string Config(int train, int micro, double clip = 0) => $$"""
        { "train_batch_size": {{train}}, "train_micro_batch_size_per_gpu": {{micro}}, "steps_per_print": 100,
          "gradient_clipping": {{clip.ToString(System.Globalization.CultureInfo.InvariantCulture)}},
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "zero_optimization": { "stage": 0 } }
        """;

    [Fact]
    public void ReferenceMatchesTheEngineOnOneProcessWithGradientAccumulation()
    {
        // Global batch 16 as 4 accumulated micro-batches of 4.
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 20);
        var engine = GptRun.Train(1, Config(16, 4), steps: 20);
        double diff = PlainGptReference.MaxDifference(reference, engine);
        output.WriteLine($"max |reference - engine on 1 process| = {diff:G3}");
        Assert.True(diff <= 1e-5, $"the engine on one process differs from the plain reference by {diff}");
        Assert.True(reference.Losses[^1] < reference.Losses[0] - 0.1, $"the reference does not learn: {reference.Losses[0]} → {reference.Losses[^1]}");
    }

    [Fact]
    public void ReferenceMatchesTheEngineOnOneProcessWhenClippingEveryStep()
    {
        const double clip = 0.05;
        var reference = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 20, gradientClipping: clip);
        Assert.All(reference.GradientNorms, norm => Assert.True(norm > clip, $"gradient norm {norm} is not clipped by {clip}"));
        // Clipping must matter at this tolerance, or the comparison would not test it.
        var unclipped = PlainGptReference.Train(GptRun.SmallModel, trainBatch: 16, microBatch: 4, steps: 20);
        double effect = reference.Losses.Zip(unclipped.Losses, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(effect > 1e-3, $"clipping changed the reference losses by only {effect}");

        var engine = GptRun.Train(1, Config(16, 4, clip), steps: 20);
        double diff = PlainGptReference.MaxDifference(reference, engine);
        output.WriteLine($"clip {clip}: gradient norms {reference.GradientNorms.Min():G3}..{reference.GradientNorms.Max():G3}, " +
                         $"clipping's effect {effect:G3}, max |reference - engine on 1 process| = {diff:G3}");
        Assert.True(diff <= 1e-5, $"the clipped engine on one process differs from the plain reference by {diff}");
    }
}
