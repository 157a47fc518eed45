using DeepSpeedSharp.Samples.Gpt;

namespace DeepSpeedSharp.Tests.Checkpointing;

public class CheckpointingSampleOptionTests
{
    [Theory]
    [InlineData(new[] { "--steps", "1" }, 0)]
    [InlineData(new[] { "--checkpoint-activations" }, 1)]
    [InlineData(new[] { "--checkpoint-activations", "--steps", "1" }, 1)]
    [InlineData(new[] { "--checkpoint-activations", "3" }, 3)]
    [InlineData(new[] { "--checkpoint-activations=2", "--steps", "1" }, 2)]
    public void CheckpointActivationsIsAFlagOrAnInterval(string[] args, int expected) =>
        Assert.Equal(expected, GptOptions.Parse(args).CheckpointActivations);

    [Theory]
    [InlineData("0")]
    [InlineData("two")]
    public void ABadIntervalIsAnErrorNamingTheOption(string value)
    {
        var e = Assert.Throws<ArgumentException>(() => GptOptions.Parse(["--checkpoint-activations", value]));
        Assert.Contains("--checkpoint-activations", e.Message);
    }
}
