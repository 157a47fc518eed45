using DeepSpeedSharp.Cli.Commands;
using DeepSpeedSharp.Tests.Samples;

namespace DeepSpeedSharp.Tests.Cli;

/// <summary><c>dss estimate --model "SAMPLE-FLAGS"</c>: the sample GPT measures itself, the rows are those of <c>--params</c>.</summary>
public class EstimateModelTests
{
    private static readonly string Gpt = Path.Combine(AppContext.BaseDirectory, "Gpt.dll");

    private static (int Code, string Out, string Err) Estimate(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = new EstimateCommand().Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string[] Rows(string output) => output.Split('\n').Skip(1).Where(l => l.Trim().Length > 0).ToArray();

    [Fact]
    public void ModelGivesTheSameRowsAsItsParameterCountAndLargestLayer()
    {
        var measured = Estimate("--model", GptDescribeParametersTests.BenchModel, "--gpt", Gpt, "--ranks", "2");
        Assert.True(measured.Code == 0, measured.Err);
        var given = Estimate("--params", "52555776", "--largest-layer", "4194304", "--ranks", "2");
        Assert.Equal(0, given.Code);
        Assert.Equal(9, Rows(measured.Out).Count(l => !l.TrimStart().StartsWith("note:", StringComparison.Ordinal))); // the column header and 8 rows
        Assert.Equal(Rows(given.Out), Rows(measured.Out));
        string header = measured.Out.Split('\n')[0];
        Assert.Contains("52,555,776 parameters (largest 4,194,304) of the sample GPT " + GptDescribeParametersTests.BenchModel, header);

        // Without --gpt, Gpt.dll is found beside dss (here: the test's bin), as `dss bench train` finds it.
        var found = Estimate("--model", GptDescribeParametersTests.BenchModel, "--ranks", "2", "--stage", "3", "--offload-optimizer");
        Assert.True(found.Code == 0, found.Err);
        Assert.Equal(Rows(Estimate("--params", "52555776", "--largest-layer", "4194304", "--ranks", "2", "--stage", "3", "--offload-optimizer").Out), Rows(found.Out));
    }

    [Theory]
    [InlineData("--ranks", "2")]
    [InlineData("--params", "1M", "--model", "--vocab 64")]
    public void ParamsAndModelExcludeEachOther(params string[] args)
    {
        var (code, _, err) = Estimate(args);
        Assert.Equal(2, code);
        Assert.StartsWith("dss estimate: error: give exactly one of --params N or --model \"SAMPLE-FLAGS\"", err);
    }

    [Fact]
    public void AMissingSampleIsOneLineNamingThePath()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "Gpt.dll");
        var (code, stdout, err) = Estimate("--model", "--vocab 64", "--gpt", missing);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains(missing, err);
    }

    [Fact]
    public void ASampleErrorIsOneLineWithTheSamplesMessage()
    {
        var (code, stdout, err) = Estimate("--model", "--d-model 510 --heads 8", "--gpt", Gpt);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("dss estimate: error: the sample ", err);
        Assert.Contains("gpt: error: --heads must divide --d-model (510), got 8", err);
    }
}
