using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>
/// A bad <c>--deepspeed_config</c> under a real <c>dss launch --num_gpus 2</c>: the person sees one line naming the file
/// and the key and a non-zero exit code; the sample is not built and no rank starts (before, every rank printed the
/// error and the launcher added two lines of its own).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed class BadConfigLaunchTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-badconfig-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void ABadConfigForTheSampleIsOneLineAndNoRankStarts()
    {
        string config = Path.Combine(_dir.FullName, "bad.json");
        File.WriteAllText(config, """{"train_batch_size": 16, "zero_optimization": {"stage": 4}}""");
        string sample = Path.Combine(Packaging.TorchSharpFiles.RepositoryRoot(), "samples", "Gpt");
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", sample, "--deepspeed_config", "bad.json");
        int code = dss.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, code);
        var lines = dss.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{dss.Error}");
        Assert.StartsWith("dss launch: error: --deepspeed_config bad.json: zero_optimization.stage", lines[0]);
        Assert.Contains("no rank was started", lines[0]);
        Assert.Equal("", dss.Output.Trim());
    }

    /// <summary>A config that is wrong only for this world size gets past the launcher's check; every rank hits the same
    /// error, which the terminal shows once, and the launcher points at it in one line.</summary>
    [Fact]
    public void AnErrorEveryRankHitsIsShownOnce()
    {
        string config = Path.Combine(_dir.FullName, "ws.json");
        File.WriteAllText(config, """{"train_batch_size": 15, "train_micro_batch_size_per_gpu": 8, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}}""");
        string sample = Path.Combine(Packaging.TorchSharpFiles.RepositoryRoot(), "samples", "Gpt");
        using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", sample, "--deepspeed_config", "ws.json", "--steps", "2");
        int code = dss.WaitForExit(TimeSpan.FromSeconds(180));
        Assert.Equal(2, code);
        var lines = dss.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("[rank ", StringComparison.Ordinal) || l.StartsWith("[dss launch] rank ", StringComparison.Ordinal)).ToList(); // not the build and world lines
        Assert.True(lines.Count == 2, $"expected the error and one launcher line about the ranks, got:\n{dss.Error}");
        Assert.Matches(@"^\[rank [01]\] gpt: error: gradient_accumulation_steps must be > 0", lines[0]);
        Assert.Matches(@"^\[dss launch\] rank [01] \(pid \d+, node 0\) exited with code 2 after the error above \(ranks 0,1 printed it\); stopped", lines[1]);
    }
}
