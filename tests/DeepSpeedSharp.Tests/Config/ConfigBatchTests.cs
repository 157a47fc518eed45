using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Tests.Config;

public class ConfigBatchTests
{
    private static BatchSizes Resolve(string json, int world, int? train = null, int? micro = null, int? gas = null) =>
        DeepSpeedConfig.FromJson(json).ResolveBatchSizes(world, train, micro, gas);

    private static string Fails(string json, int world, int? train = null, int? micro = null, int? gas = null) =>
        Assert.Throws<DeepSpeedConfigException>(() => Resolve(json, world, train, micro, gas)).Message;

    [Theory]
    // all three, consistent
    [InlineData("""{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4}""", 2, 16, 2, 4)]
    // train + micro → gas
    [InlineData("""{"train_batch_size": 32, "train_micro_batch_size_per_gpu": 4}""", 2, 32, 4, 4)]
    // train + gas → micro
    [InlineData("""{"train_batch_size": 32, "gradient_accumulation_steps": 4}""", 2, 32, 4, 4)]
    // micro + gas → train
    [InlineData("""{"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 4}""", 2, 32, 4, 4)]
    // only train → gas 1
    [InlineData("""{"train_batch_size": 32}""", 4, 32, 8, 1)]
    // only micro → gas 1
    [InlineData("""{"train_micro_batch_size_per_gpu": 4}""", 3, 12, 4, 1)]
    public void AnyTwoDetermineTheThird(string json, int world, int train, int micro, int gas) =>
        Assert.Equal(new BatchSizes(train, micro, gas), Resolve(json, world));

    [Fact]
    public void MismatchNamesTheKeysAndNumbers() =>
        Assert.Contains("train_batch_size (16) != train_micro_batch_size_per_gpu (1) × gradient_accumulation_steps (8) × data-parallel world size (1)",
            Fails("""{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 8}""", 1));

    [Theory]
    // integer division as DeepSpeed: 30 // 4 // 2 = 3 → 4·3·2 = 24 ≠ 30
    [InlineData("""{"train_batch_size": 30, "train_micro_batch_size_per_gpu": 4}""", 2, "train_batch_size (30) != train_micro_batch_size_per_gpu (4) × gradient_accumulation_steps (3) × data-parallel world size (2)")]
    [InlineData("""{"train_batch_size": 30}""", 4, "train_batch_size (30) != train_micro_batch_size_per_gpu (7) × gradient_accumulation_steps (1) × data-parallel world size (4)")]
    [InlineData("""{"train_batch_size": 2}""", 4, "train_micro_batch_size_per_gpu must be > 0, got 0")]
    [InlineData("""{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 16}""", 1, "gradient_accumulation_steps must be > 0, got 0")]
    [InlineData("""{}""", 1, "either train_batch_size or train_micro_batch_size_per_gpu needs to be provided")]
    [InlineData("""{"gradient_accumulation_steps": 4}""", 1, "either train_batch_size or train_micro_batch_size_per_gpu needs to be provided")]
    public void InvalidCombinationsAreRejected(string json, int world, string expected) => Assert.Contains(expected, Fails(json, world));

    [Fact]
    public void AutoKeysAreFilledFromTheProgram()
    {
        const string allAuto = """{"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto"}""";
        var c = DeepSpeedConfig.FromJson(allAuto);
        Assert.Null(c.TrainBatchSize);
        Assert.Empty(c.Warnings); // batch "auto" is resolved later, not defaulted
        Assert.Equal(new BatchSizes(12, 2, 3), Resolve(allAuto, 2, micro: 2, gas: 3));
        Assert.Equal(new BatchSizes(12, 2, 3), Resolve(allAuto, 2, train: 12, micro: 2, gas: 3));
        // an "auto" key the other two determine is derived
        Assert.Equal(new BatchSizes(16, 2, 8), Resolve("""{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": "auto"}""", 1));
    }

    [Fact]
    public void UnfilledAutoIsRejectedSayingHow()
    {
        var m = Fails("""{"train_batch_size": 16, "train_micro_batch_size_per_gpu": "auto"}""", 1);
        Assert.Contains("train_micro_batch_size_per_gpu is \"auto\" in the config and no value was passed; pass it to DeepSpeed.Initialize or write a number", m);
    }

    [Fact]
    public void ProgramValuesFillAbsentKeysAndMustAgreeWithGivenOnes()
    {
        Assert.Equal(new BatchSizes(8, 4, 2), Resolve("""{"train_batch_size": 8}""", 1, micro: 4));
        Assert.Contains("train_batch_size is 8 in the config but 16 was passed", Fails("""{"train_batch_size": 8}""", 1, train: 16));
        Assert.Contains("passed by the program must be a positive integer", Fails("""{"train_batch_size": 8}""", 1, micro: 0));
        Assert.Contains("data-parallel world size must be ≥ 1", Fails("""{"train_batch_size": 8}""", 0));
    }
}
