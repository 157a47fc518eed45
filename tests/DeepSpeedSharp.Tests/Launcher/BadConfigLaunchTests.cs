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
}
