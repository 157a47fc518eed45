using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Tests.Config;

/// <summary>A config with several mistakes reports all of them at once: in the library's exception and in
/// <c>dss validate-config</c>, one line per error naming the file and the key.</summary>
public sealed class ConfigAllErrorsTests
{
    // An unknown key, a type error, range errors (top level and inside sections), a cross-key error and a rejected value.
    private const string Json = """
        {
          "train_batch_size": 8,
          "steps_per_print": 0,
          "wall_clock_breakdown": "yes",
          "gradient_clipingg": 1.0,
          "fp16": {"enabled": true, "loss_scale_window": 0},
          "bf16": {"enabled": true},
          "zero_optimization": {"stage": 2, "allgather_bucket_size": 0, "mics_shard_size": 4},
          "optimizer": {"type": "AdamW", "params": {"lr": -1}}
        }
        """;

    private static readonly string[] Expected =
    [
        "steps_per_print: must be a positive integer, got 0",
        "wall_clock_breakdown: expected true or false, got a string \"yes\"",
        "unknown key 'gradient_clipingg' at the top level; did you mean 'gradient_clipping'?",
        "fp16.loss_scale_window: must be a positive integer, got 0",
        "zero_optimization.allgather_bucket_size: must be a positive integer, got 0",
        "'zero_optimization.mics_shard_size' = 4 is not supported by DeepSpeedSharp: ",
        "optimizer.params.lr: must be a number ≥ 0, got -1",
        "fp16.enabled and bf16.enabled are both true; enable at most one mixed-precision mode",
    ];

    [Fact]
    public void TheLibraryReportsEveryErrorWithACountedSummaryLine()
    {
        var file = Path.Combine(Path.GetTempPath(), $"many-errors-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, Json);
        try
        {
            var e = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromFile(file));
            Assert.Equal(Expected.Length, e.Errors.Count);
            foreach (var (expected, actual) in Expected.Zip(e.Errors)) Assert.StartsWith(expected, actual);
            var lines = e.Message.Split('\n');
            Assert.Equal($"{Expected.Length} errors in {file}:", lines[0]);
            Assert.Equal(Expected.Length + 1, lines.Length);
            Assert.Equal(file, e.File);
            var init = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeed.Initialize(TorchSharp.torch.nn.Linear(2, 2), config: file));
            Assert.Equal(e.Message, init.Message);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void ValidateConfigPrintsEachErrorOnItsOwnLineAndExits1()
    {
        var file = Path.Combine(Path.GetTempPath(), $"many-errors-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, Json);
        try
        {
            var (o, err) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, new DeepSpeedSharp.Cli.Commands.ValidateConfigCommand().Run([file], o, err));
            var lines = o.ToString().ReplaceLineEndings("\n").TrimEnd().Split('\n');
            Assert.Equal(Expected.Length, lines.Length);
            foreach (var (expected, line) in Expected.Zip(lines)) Assert.StartsWith($"{file}: error: {expected}", line);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void OneErrorIsOneLineAndACrossKeyCheckOnAFailedKeyIsSkipped()
    {
        var e = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": "3", "offload_param": {"device": "cpu"}}}"""));
        // stage failed to read (it stays 0), so "offload_param needs stage 3" would blame the wrong value: not reported.
        Assert.Equal(["zero_optimization.stage: expected a ZeRO stage: 0, 1, 2 or 3, got a string \"3\""], e.Errors);
        Assert.Equal(e.Errors[0], e.Message);
    }

    [Theory]
    [InlineData("""{"scheduler": {"type": "WarmupDecayLR", "params": {"total_num_steps": 0}}}""", "scheduler.params.total_num_steps: must be a positive integer, got 0")]
    [InlineData("""{"optimizer": {"type": 3, "params": {"lr": 0.1}}}""", "optimizer.type: expected a string, got a number 3")]
    public void AKeyThatFailedIsNotReportedAgainAsMissing(string json, string error) =>
        Assert.Equal([error], Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson(json)).Errors);

    [Fact]
    public void EveryDuplicateKeyIsReported()
    {
        var e = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson("""{"a": 1, "a": 2, "zero_optimization": {"stage": 1, "stage": 2}}"""));
        Assert.Equal(2, e.Errors.Count);
        Assert.StartsWith("2 errors in the config:\n  duplicate key 'a' at the top level", e.Message);
        Assert.Contains("duplicate key 'stage' in zero_optimization", e.Errors[1]);
    }
}
