using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// <c>Gpt.dll MODEL-FLAGS --describe-parameters</c>: builds the model on the meta device, prints one JSON line with its
/// size and exits without training (what <c>dss estimate --model</c> reads).
/// </summary>
[Trait("Tier", "Full")]
public class GptDescribeParametersTests
{
    /// <summary>The issue-16 benchmark model: 52,555,776 parameters, the largest the 8192 × 512 embedding (and lm_head).</summary>
    public const string BenchModel = "--vocab 8192 --d-model 512 --layers 14 --heads 8 --seq 64";

    [Fact]
    public void PrintsTheParameterCountAndLargestTensorAsOneJsonLine()
    {
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", 1, $"{BenchModel} --describe-parameters", Path.GetTempPath());
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.Equal("{\"parameters\": 52555776, \"largest_parameter\": 4194304}", stdout.Trim());
    }

    [Fact]
    public void AModelFarTooLargeForThisMachineIsDescribedWithoutAllocatingIt()
    {
        // 78 G parameters (312 GB in fp32): only the meta device makes this possible.
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", 1,
            "--vocab 50304 --d-model 8192 --layers 96 --heads 64 --seq 2048 --describe-parameters", Path.GetTempPath());
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.Equal("{\"parameters\": 78160609280, \"largest_parameter\": 412090368}", stdout.Trim());
    }

    [Fact]
    public void BadModelFlagsAreOneErrorLine()
    {
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", 1, "--d-model 510 --heads 8 --describe-parameters", Path.GetTempPath());
        Assert.Equal(2, code);
        Assert.Equal("", stdout.Trim());
        Assert.Equal("gpt: error: --heads must divide --d-model (510), got 8", stderr.Trim());
    }
}
