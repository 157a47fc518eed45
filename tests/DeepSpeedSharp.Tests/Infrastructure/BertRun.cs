using System.Text.Json;
using DeepSpeedSharp.Tests.Packaging;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// Runs the BERT sample as a user would — alone, or under `dss launch --num_gpus N` — with one of its shipped configs
/// (<c>samples/Bert/configs/NAME.json</c>) or a config written by the test, and reads back its per-step losses and
/// learning rates (from --loss-log) and its whole output.
/// </summary>
internal sealed class BertRun
{
    /// <summary>A tiny model for tests: d 64, 4 layers, 4 heads, sequence 32 (2,152 ids from the shipped text).</summary>
    public const string SmallModel = "--d-model 64 --layers 4 --heads 4 --seq 32";

    public required double[] Losses { get; init; }
    public required double[] LearningRates { get; init; }
    public required string Output { get; init; }

    /// <summary>The path of a shipped config, <c>samples/Bert/configs/<paramref name="name"/>.json</c>.</summary>
    public static string ShippedConfig(string name) => Path.Combine(TorchSharpFiles.RepositoryRoot(), "samples", "Bert", "configs", name + ".json");

    /// <summary>Trains <paramref name="steps"/> steps on <paramref name="ranks"/> ranks with the config file <paramref name="configPath"/>.</summary>
    public static BertRun Train(int ranks, string configPath, int steps, string extraArgs = "", string model = SmallModel, string? workingDirectory = null)
    {
        var dir = workingDirectory ?? Directory.CreateTempSubdirectory("dss-bertrun").FullName;
        var log = Path.Combine(dir, $"loss-{Guid.NewGuid():N}.jsonl");
        var (code, stdout, stderr) = SampleProcess.Run("Bert.dll", ranks, $"{model} --steps {steps} --deepspeed_config {configPath} --loss-log {log} {extraArgs}", dir);
        string output = stdout + stderr;
        Assert.True(code == 0, $"training on {ranks} rank(s) exited with {code}:\n{output}");
        var lines = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        return new BertRun
        {
            Losses = lines.Select(l => l.GetProperty("loss").GetDouble()).ToArray(),
            LearningRates = lines.Select(l => l.GetProperty("lr").GetDouble()).ToArray(),
            Output = output,
        };
    }

    /// <summary>Runs Bert.dll alone with <paramref name="args"/> and returns its exit code, stdout and stderr.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string args) =>
        SampleProcess.Run("Bert.dll", 1, args, Directory.CreateTempSubdirectory("dss-bertrun").FullName);

    /// <summary>Largest absolute per-step difference between two loss series of the same length.</summary>
    public static double MaxDifference(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        Assert.Equal(a.Count, b.Count);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
    }
}
