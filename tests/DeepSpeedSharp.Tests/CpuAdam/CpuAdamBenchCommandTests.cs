using System.Globalization;
using DeepSpeedSharp.Cli.Commands;
using TorchSharp;

namespace DeepSpeedSharp.Tests.CpuAdam;

/// <summary><c>dss bench adam</c>: a small in-process run prints the table; bad options are usage errors.</summary>
public class CpuAdamBenchCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = new BenchAdamCommand().Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void SmallRunPrintsOneRowPerSizeAndThreadCountWithTheStreamBaseline()
    {
        // torch's current thread count, so the in-process run does not change a setting other tests share.
        var threads = torch.get_num_threads().ToString(CultureInfo.InvariantCulture);
        var (code, output, err) = Run("--params", "100K,50001", "--threads", threads, "--steps", "2", "--warmup", "1");
        Assert.True(code == 0, err);
        Assert.Contains("stream = one pass reading p, g, m, v and writing p, m, v over the same tensors", output);
        var rows = output.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(c => c.Length == 9 && (c[0] == "100K" || c[0] == "50001")).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(threads, r[1]));
        foreach (var r in rows)
        {
            Assert.True(double.Parse(r[2], CultureInfo.InvariantCulture) > 0); // our ms
            Assert.True(double.Parse(r[4], CultureInfo.InvariantCulture) > 0); // torch ms
            Assert.EndsWith("x", r[6]);
            Assert.True(double.Parse(r[7], CultureInfo.InvariantCulture) > 0); // stream GB/s
            Assert.EndsWith("%", r[8]);
        }
    }

    [Theory]
    [InlineData("--params", "0")]
    [InlineData("--params", "10Q")]
    [InlineData("--params", "1G")]
    [InlineData("--threads", "0")]
    [InlineData("--steps")]
    [InlineData("--bogus", "1")]
    [InlineData("sgd")]  // not an option of bench adam
    public void BadArgumentsAreUsageErrors(params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains("usage: dss bench adam", err);
    }

    [Theory]
    [InlineData("10M", 10_000_000L)]
    [InlineData("250K", 250_000L)]
    [InlineData("1.5M", 1_500_000L)]
    [InlineData("123", 123L)]
    public void SizesParse(string text, long expected) => Assert.Equal(expected, BenchAdamCommand.ParseSize(text));
}
