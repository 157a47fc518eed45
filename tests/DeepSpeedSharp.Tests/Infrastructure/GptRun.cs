using DeepSpeedSharp.Training;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// Runs the sample GPT as a user would — alone, or under `dss launch --num_gpus N` — and reads back what it
/// reports: per-step losses (from --loss-log) and rank 0's model-state and communication figures.
/// </summary>
internal sealed partial class GptRun
{
    public const string SmallModel = "--vocab 64 --d-model 32 --layers 2 --heads 2 --seq 16";

    public required double[] Losses { get; init; }
    public required string Output { get; init; }
    public long ParameterBytes { get; init; }
    public long GradientBytes { get; init; }
    public long OptimizerStateBytes { get; init; }
    public long BytesSentLastStep { get; init; }
    public long? PeakGatheredBytes { get; init; }

    /// <summary>Writes <paramref name="configJson"/> to a file and trains <paramref name="steps"/> steps on <paramref name="ranks"/> ranks.</summary>
    public static GptRun Train(int ranks, string configJson, int steps = 20, string extraArgs = "", string model = SmallModel)
    {
        var dir = Directory.CreateTempSubdirectory("dss-gptrun").FullName;
        var config = Path.Combine(dir, "ds.json");
        File.WriteAllText(config, configJson);
        var log = Path.Combine(dir, "loss.jsonl");
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", ranks, $"{model} --steps {steps} --deepspeed_config {config} --loss-log {log} {extraArgs}", dir);
        string output = stdout + stderr;
        Assert.True(code == 0, $"training on {ranks} rank(s) exited with {code}:\n{output}");
        var m = StateLine().Match(output);
        Assert.True(m.Success, $"no model-state line in the output:\n{output}");
        long L(int i) => long.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture);
        return new GptRun
        {
            Losses = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray(),
            Output = output,
            ParameterBytes = L(1),
            GradientBytes = L(2),
            OptimizerStateBytes = L(3),
            BytesSentLastStep = L(4),
            PeakGatheredBytes = PeakLine().Match(output) is { Success: true } peak ? long.Parse(peak.Groups[1].Value, CultureInfo.InvariantCulture) : null,
        };
    }

    /// <summary>Largest absolute per-step difference between two runs' losses (they must have the same length).</summary>
    public static double MaxDifference(GptRun a, GptRun b)
    {
        Assert.Equal(a.Losses.Length, b.Losses.Length);
        return a.Losses.Zip(b.Losses, (x, y) => Math.Abs(x - y)).Max();
    }

    [GeneratedRegex(@"model state bytes on rank 0: parameters (\d+), gradients (\d+), optimizer state (\d+); bytes sent in the last step (\d+)")]
    private static partial Regex StateLine();

    [GeneratedRegex(@"peak gathered parameter bytes on rank 0: (\d+)")]
    private static partial Regex PeakLine();
}
