using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>Bert.dll as a program: bad input is exit code 2 and one line on stderr naming the option or file.</summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class BertProgramTests
{
    [Theory]
    [InlineData("--layer 2", "unknown option '--layer'")]
    [InlineData("--checkpoint-activations-interval 2", "--checkpoint-activations-interval needs --checkpoint-activations")]
    [InlineData("--seq 2", "--seq needs an integer >= 3, got '2'")]
    [InlineData("--data /nonexistent/text.txt", "--data: file '/nonexistent/text.txt' does not exist")]
    [InlineData("--deepspeed_config /nonexistent/ds.json", "/nonexistent/ds.json")]
    public void BadInputIsExitCode2AndOneErrorLine(string args, string expected)
    {
        var (code, stdout, stderr) = BertRun.Run(args);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("bert: error: ", line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain("bert:", stdout);
    }
}
