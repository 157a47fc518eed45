using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// Runs the LLaMA sample as a user would — alone, or under `dss launch --num_gpus N` — and reads back what it reports:
/// per-step losses (from --loss-log), rank 0's model-state figures and the whole output.
/// </summary>
internal sealed partial class LlamaRun
{
    /// <summary>A tiny model for tests: d 32, 2 layers, 4 query heads sharing 2 key/value heads, sequence 32.</summary>
    public const string SmallModel = "--d-model 32 --layers 2 --heads 4 --kv-heads 2 --seq 32";

    public required double[] Losses { get; init; }
    public required string Output { get; init; }
    public long ParameterBytes { get; init; }
    public long OptimizerStateBytes { get; init; }

    /// <summary>Writes <paramref name="configJson"/> to a file and trains <paramref name="steps"/> steps on <paramref name="ranks"/> ranks.</summary>
    public static LlamaRun Train(int ranks, string configJson, int steps = 20, string extraArgs = "", string model = SmallModel)
    {
        var dir = Directory.CreateTempSubdirectory("dss-llamarun").FullName;
        var config = Path.Combine(dir, "ds.json");
        File.WriteAllText(config, configJson);
        var log = Path.Combine(dir, "loss.jsonl");
        var (code, stdout, stderr) = SampleProcess.Run("Llama.dll", ranks, $"{model} --steps {steps} --deepspeed_config {config} --loss-log {log} {extraArgs}", dir);
        string output = stdout + stderr;
        Assert.True(code == 0, $"training on {ranks} rank(s) exited with {code}:\n{output}");
        var m = StateLine().Match(output);
        Assert.True(m.Success, $"no model-state line in the output:\n{output}");
        long L(int i) => long.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture);
        return new LlamaRun
        {
            Losses = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray(),
            Output = output,
            ParameterBytes = L(1),
            OptimizerStateBytes = L(3),
        };
    }

    /// <summary>Runs Llama.dll alone with <paramref name="args"/> and returns its exit code, stdout and stderr.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string args) =>
        SampleProcess.Run("Llama.dll", 1, args, Directory.CreateTempSubdirectory("dss-llamarun").FullName);

    /// <summary>Largest absolute per-step difference between two runs' losses (they must have the same length).</summary>
    public static double MaxDifference(LlamaRun a, LlamaRun b)
    {
        Assert.Equal(a.Losses.Length, b.Losses.Length);
        return a.Losses.Zip(b.Losses, (x, y) => Math.Abs(x - y)).Max();
    }

    [GeneratedRegex(@"llama: model state bytes on rank 0: parameters (\d+), gradients (\d+), optimizer state (\d+); bytes sent in the last step (\d+)")]
    private static partial Regex StateLine();
}
