using System.CommandLine;
using DeepSpeedSharp.CommandLine;

namespace DeepSpeedSharp.Tests.CommandLine;

/// <summary><see cref="DeepSpeed.AddConfigArguments"/>: DeepSpeed's add_config_arguments on System.CommandLine, parsing what the launchers pass.</summary>
public class ConfigArgumentsTests : IDisposable
{
    private readonly string config = Path.Combine(Path.GetTempPath(), $"dss-args-{Guid.NewGuid():N}.json");

    public ConfigArgumentsTests() => File.WriteAllText(config, "{}");

    public void Dispose() => File.Delete(config);

    private static (RootCommand Root, DeepSpeedArguments Ds, Option<int> Steps) Trainer()
    {
        var root = new RootCommand("trainer");
        var steps = TrainerOptions.Int("--steps", "optimizer steps", 10, min: 0);
        root.Options.Add(steps);
        return (root, DeepSpeed.AddConfigArguments(root), steps);
    }

    [Fact]
    public void ParsesWhatDeepSpeedsLauncherPasses()
    {
        // deepspeed train.py --deepspeed --deepspeed_config ds.json runs: python train.py --local_rank=0 --deepspeed --deepspeed_config ds.json
        var (root, ds, steps) = Trainer();
        var parsed = TrainerCommandLine.Parse(root, ["--local_rank=3", "--deepspeed", "--deepspeed_config", config, "--steps", "5"]);
        Assert.Equal(new DeepSpeedArgumentValues(true, config, 3), ds.Read(parsed));
        Assert.Equal(5, parsed.GetValue(steps));
    }

    [Fact]
    public void ParsesDssLaunchsFormsAndTheDeprecatedAliases()
    {
        var (root, ds, _) = Trainer();
        Assert.Equal(new DeepSpeedArgumentValues(false, null, 1), ds.Read(TrainerCommandLine.Parse(root, ["--local_rank", "1"])));
        Assert.Equal(new DeepSpeedArgumentValues(true, config, null), ds.Read(TrainerCommandLine.Parse(root, ["--deepscale", $"--deepscale_config={config}"])));
        Assert.Equal(new DeepSpeedArgumentValues(false, null, null), ds.Read(TrainerCommandLine.Parse(root, [])));
    }

    [Theory]
    [InlineData("--deepspeed_config /nonexistent/ds.json", "--deepspeed_config: no such file '/nonexistent/ds.json'")]
    [InlineData("--local_rank=-1", "--local_rank needs an integer >= 0, got '-1'")]
    [InlineData("--steps", "--steps needs an integer >= 0")]
    [InlineData("--deepspeed_confg x.json", "unknown option '--deepspeed_confg' (did you mean --deepspeed_config?)")]
    [InlineData("--stesp=4", "unknown option '--stesp=4' (did you mean --steps?)")]
    [InlineData("--deepspeed=yes", "--deepspeed takes no value, got '--deepspeed=yes'")]
    public void BadInputIsOneLineNamingTheOption(string args, string expected)
    {
        var (root, _, _) = Trainer();
        var e = Assert.Throws<ArgumentException>(() => TrainerCommandLine.Parse(root, args.Split(' ')));
        Assert.StartsWith(expected, e.Message);
        if (expected.StartsWith("unknown", StringComparison.Ordinal))
            Assert.EndsWith("known options: --help --version --steps --deepspeed --deepscale --deepspeed_config --deepscale_config --local_rank", e.Message);
        else Assert.Equal(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AddingThemTwiceIsRefused()
    {
        var (root, _, _) = Trainer();
        Assert.Contains("already has an option --deepspeed", Assert.Throws<ArgumentException>(() => DeepSpeed.AddConfigArguments(root)).Message);
    }
}
