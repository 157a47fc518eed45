using DeepSpeedSharp.Cli.Commands;

namespace DeepSpeedSharp.Tests.Cli;

/// <summary>
/// <c>dss estimate</c> explains a higher ZeRO stage that needs more per rank than a lower one, right under its row:
/// the term (ZeRO-3's reduce-scatter buffers), the key that sizes it with its value, and a value that helps.
/// </summary>
public class EstimateNoteTests
{
    private static string[] Lines(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.True(new EstimateCommand().Run(args, o, e) == 0, e.ToString());
        return o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static bool IsRow(string line, string stage, string offload)
    {
        var cells = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return cells.Length > 2 && cells[0] == stage && cells[1] == offload;
    }

    [Fact]
    public void ZeroThreeAboveZeroOneIsExplainedByTheReduceBucket()
    {
        // 350M parameters on 16 ranks: the default reduce_bucket_size (500M) holds the whole model's fp32 gradients.
        var lines = Lines("--params", "350M", "--ranks", "16");
        int row = Array.FindIndex(lines, l => IsRow(l, "3", "none"));
        string note = lines[row + 1];
        Assert.StartsWith("note: stage 3 needs more per rank than stage 1 here (1.837 GB vs 1.750 GB): ZeRO-3's reduce-scatter buffers take 1.488 GB", note);
        Assert.Contains("zero_optimization.reduce_bucket_size = 500,000,000", note);
        Assert.Contains("e.g. 50,000,000 makes stage 3 0.562 GB per rank", note);
        Assert.Equal(2, lines.Count(l => l.StartsWith("note:", StringComparison.Ordinal))); // under "none" and "optimizer"
        Assert.False(lines.Take(row).Any(l => l.StartsWith("note:", StringComparison.Ordinal)), "stages 0-2 need no note");
    }

    [Fact]
    public void WithTheSuggestedBucketThereIsNothingToExplain()
    {
        string config = Path.GetTempFileName();
        try
        {
            File.WriteAllText(config, """{"zero_optimization": {"stage": 3, "reduce_bucket_size": 50000000}}""");
            var lines = Lines("--params", "350M", "--ranks", "16", "--config", config);
            Assert.DoesNotContain(lines, l => l.StartsWith("note:", StringComparison.Ordinal));
            Assert.Contains(lines, l => IsRow(l, "3", "none") && l.Contains("0.562 GB", StringComparison.Ordinal));
        }
        finally { File.Delete(config); }
    }

    [Fact]
    public void ASmallModelOnFewRanksGetsNoNote() =>
        Assert.DoesNotContain(Lines("--params", "10M", "--ranks", "2", "--stage", "3"), l => l.StartsWith("note:", StringComparison.Ordinal));
}
