using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>
/// The launcher reads PROGRAM's <c>--deepspeed_config</c> before it builds or starts anything, so a bad config is one
/// line naming the file and the key (in-process; <see cref="BadConfigLaunchTests"/> runs it for real).
/// </summary>
public class ConfigPreflightTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-preflight-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData(new[] { "--steps", "3", "--deepspeed_config", "c.json" }, "--deepspeed_config", "c.json")]
    [InlineData(new[] { "--deepspeed_config=c.json", "--steps", "3" }, "--deepspeed_config", "c.json")]
    [InlineData(new[] { "--deepscale_config", "old.json" }, "--deepscale_config", "old.json")]
    public void FindsDeepSpeedsConfigArgument(string[] args, string flag, string value) =>
        Assert.Equal((flag, value), ConfigPreflight.Find(args));

    [Fact]
    public void ProgramsWithoutAConfigArgumentAreLeftAlone()
    {
        Assert.Null(ConfigPreflight.Find(["--steps", "3", "--deepspeed_config"]));
        ConfigPreflight.Check(["--steps", "3"], _dir.FullName);
    }

    [Fact]
    public void AValidConfigPasses()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "ok.json"), """{"train_batch_size": 8, "zero_optimization": {"stage": 1}}""");
        ConfigPreflight.Check(["--deepspeed_config", "ok.json"], _dir.FullName);
    }

    [Theory]
    [InlineData("""{"train_batch_size": 8, "zero_optimization": {"stage": "two"}}""", "zero_optimization.stage: expected a ZeRO stage: 0, 1, 2 or 3")]
    [InlineData("""{"train_batch_size": -1, "zero_optimization": {"stage": "two"}}""", "2 errors: ")]
    public void ABadConfigIsOneLineNamingTheFileAndTheKey(string json, string error)
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "bad.json"), json);
        var e = Assert.Throws<ArgumentException>(() => ConfigPreflight.Check(["--deepspeed_config", "bad.json"], _dir.FullName));
        Assert.StartsWith($"--deepspeed_config bad.json: {error}", e.Message);
        Assert.Contains("zero_optimization.stage", e.Message);
        Assert.Contains("no rank was started", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AMissingFileIsNamedWithWhereItWasLookedFor()
    {
        var e = Assert.Throws<ArgumentException>(() => ConfigPreflight.Check(["--deepspeed_config", "configs/none.json"], _dir.FullName));
        Assert.Equal($"--deepspeed_config configs/none.json: no such file ({Path.Combine(_dir.FullName, "configs", "none.json")}); no rank was started.", e.Message);
    }
}
