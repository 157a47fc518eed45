using DeepSpeedSharp.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Pipeline;

/// <summary>
/// Layer partitioning as DeepSpeed's <c>partition_uniform</c> / <c>partition_balanced</c> compute it (expected boundaries
/// produced by its algorithm), the three partition methods, and layer specs that report their type and parameter count.
/// </summary>
public class LayerPartitionTests
{
    public static TheoryData<long[], int, int[]> BalancedCases => new()
    {
        { new long[] { 10, 20, 30, 40, 50, 60 }, 2, new[] { 0, 4, 6 } },
        { new long[] { 10, 20, 30, 40, 50, 60 }, 3, new[] { 0, 3, 5, 6 } },
        { new long[] { 100, 1, 1, 1, 1, 1, 1, 100 }, 4, new[] { 0, 1, 4, 7, 8 } },
        { new long[] { 0, 5, 5, 5, 5, 0 }, 2, new[] { 0, 3, 6 } },
        { new long[] { 0, 1, 1, 1, 1, 1, 1, 1, 1, 0 }, 4, new[] { 0, 3, 5, 7, 10 } },
        { new long[] { 3, 3, 3 }, 5, new[] { 0, 1, 2, 3, 3, 3 } },
        { new long[] { 7, 1, 8, 2, 9, 3, 10 }, 3, new[] { 0, 3, 5, 7 } },
    };

    [Theory]
    [MemberData(nameof(BalancedCases))]
    public void BalancedMatchesDeepSpeed(long[] weights, int parts, int[] expected) =>
        Assert.Equal(expected, LayerPartition.Balanced(weights, parts));

    [Theory]
    [InlineData(10, 4, new[] { 0, 3, 6, 8, 10 })]
    [InlineData(3, 5, new[] { 0, 1, 2, 3, 3, 3 })]
    [InlineData(8, 2, new[] { 0, 4, 8 })]
    [InlineData(7, 3, new[] { 0, 3, 5, 7 })]
    public void UniformMatchesDeepSpeed(int items, int parts, int[] expected) =>
        Assert.Equal(expected, LayerPartition.Uniform(items, parts));

    [Fact]
    public void MethodsBalanceParametersCountsOrMatchingTypes()
    {
        // An embedding, four blocks and a head: "parameters" weighs the big embedding and head, "type:Block" counts blocks.
        long[] counts = { 4000, 100, 100, 100, 100, 4000 };
        string[] types = { "Embedding", "Block", "Block", "Block", "Block", "Linear" };
        Assert.Equal(new[] { 0, 1, 5, 6 }, LayerPartition.Compute("parameters", counts, types, 3));
        Assert.Equal(new[] { 0, 2, 4, 6 }, LayerPartition.Compute("uniform", counts, types, 3));
        Assert.Equal(new[] { 0, 3, 6 }, LayerPartition.Compute("type:block", counts, types, 2));
        Assert.Contains("no layer's type matches", Assert.Throws<ArgumentException>(() => LayerPartition.Compute("type:Attention", counts, types, 2)).Message);
        Assert.Contains("'parameters', 'uniform' or 'type:REGEX'", Assert.Throws<ArgumentException>(() => LayerPartition.Compute("profile", counts, types, 2)).Message);
    }

    [Fact]
    public void LayerSpecsBuildOnDemandAndReportTypeAndParameters()
    {
        int built = 0;
        var spec = new LayerSpec(() => { built++; return nn.Linear(4, 3); });
        Assert.Equal(0, built);
        Assert.Equal("Linear", spec.TypeName);
        Assert.Equal(15, spec.TrainableParameterCount);
        Assert.Equal(1, built); // one inspection build, cached
        var typed = LayerSpec.Of(() => nn.Linear(2, 2));
        Assert.Equal("Linear", typed.TypeName);
        var tied = new TiedLayerSpec("embed", () => nn.Embedding(10, 4), forwardFn: (m, x) => x);
        Assert.Equal(new[] { "weight" }, tied.TiedWeightAttributes);
        Assert.Equal("TiedLayerSpec(embed, Embedding)", tied.ToString());
    }

    private static Tensor Mse(Tensor a, Tensor b) => nn.functional.mse_loss(a, b);

    /// <summary>Issue 34: the partition printout names the loss function, not the compiler's name for a lambda.</summary>
    [Fact]
    public void ThePartitionNamesTheLossFunctionReadably()
    {
        Func<Tensor, Tensor, Tensor> lambda = (a, b) => nn.functional.mse_loss(a, b);
        Assert.Equal("a lambda in LayerPartitionTests.ThePartitionNamesTheLossFunctionReadably", PipelineModule.FunctionName(lambda));
        Assert.Equal("LayerPartitionTests.Mse", PipelineModule.FunctionName(Mse));
    }
}
