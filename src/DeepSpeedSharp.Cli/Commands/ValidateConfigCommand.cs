using System.Globalization;
using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss validate-config FILE... [--world-size N] [--strict]</c>: reads each DeepSpeed config and prints
/// <c>FILE: ok</c> with a one-line summary, or <c>FILE: error: MESSAGE</c>; then each key present that has no effect
/// here as <c>FILE: no effect: KEY: REASON</c> (errors with <c>--strict</c>), and warnings as <c>FILE: warning: ...</c>.
/// Exit code 0 when all files are valid, 1 when any is invalid, 2 on usage errors.
/// </summary>
public sealed class ValidateConfigCommand : ICliCommand
{
    /// <inheritdoc/>
    public string Name => "validate-config";

    /// <inheritdoc/>
    public string Summary => "check DeepSpeed config files: validate-config FILE... [--world-size N] [--strict]";

    private const string Usage = "usage: dss validate-config FILE... [--world-size N] [--strict]";

    /// <inheritdoc/>
    public int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs with explicit writers (for tests).</summary>
    public int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var files = new List<string>();
        var worldSize = 1;
        var strict = false;
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a is "-h" or "--help")
            {
                stdout.WriteLine(Usage);
                stdout.WriteLine("  --world-size N  data-parallel world size for the batch-size arithmetic (default 1)");
                stdout.WriteLine("  --strict        keys that have no effect in DeepSpeedSharp are errors");
                return 0;
            }
            if (a == "--strict")
            {
                strict = true;
                continue;
            }
            if (a == "--world-size" || a.StartsWith("--world-size=", StringComparison.Ordinal))
            {
                string? text = a.Length > "--world-size".Length ? a["--world-size=".Length..] : i + 1 < args.Length ? args[++i] : null;
                if (text is null || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out worldSize) || worldSize < 1)
                {
                    stderr.WriteLine($"dss validate-config: --world-size needs a positive integer, got '{text ?? "(nothing)"}'");
                    return 2;
                }
                continue;
            }
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                stderr.WriteLine($"dss validate-config: unknown option '{a}'; {Usage}");
                return 2;
            }
            files.Add(a);
        }
        if (files.Count == 0)
        {
            stderr.WriteLine($"dss validate-config: no config files given; {Usage}");
            return 2;
        }

        var allValid = true;
        foreach (var file in files)
        {
            try
            {
                var config = DeepSpeedConfig.FromFile(file);
                var summary = Summarise(config, worldSize);
                if (strict && config.NoEffectKeys.Count > 0)
                {
                    allValid = false;
                    foreach (var k in config.NoEffectKeys)
                        stdout.WriteLine($"{file}: error: '{k.Key}' has no effect in DeepSpeedSharp (--strict): {k.Reason}");
                    continue;
                }
                stdout.WriteLine($"{file}: ok: {summary}");
                foreach (var k in config.NoEffectKeys) stdout.WriteLine($"{file}: no effect: {k}");
                foreach (var w in config.Warnings) stdout.WriteLine($"{file}: warning: {w}");
            }
            catch (DeepSpeedConfigException e)
            {
                allValid = false;
                foreach (var error in e.Errors) stdout.WriteLine($"{file}: error: {StripFilePrefix(error, file)}");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                allValid = false;
                stdout.WriteLine($"{file}: error: {e.GetType().Name}: {e.Message}");
            }
        }
        return allValid ? 0 : 1;
    }

    private static string StripFilePrefix(string message, string file) =>
        message.StartsWith(file + ": ", StringComparison.Ordinal) ? message[(file.Length + 2)..] : message;

    /// <summary>Batch sizes at the world size; ZeRO stage; precision; offload; pipeline. Throws on an invalid batch setup.</summary>
    internal static string Summarise(DeepSpeedConfig c, int worldSize)
    {
        var stages = int.TryParse(c.Pipeline.Stages, out var s) ? s : 1;
        var batchKeysGiven = new[] { c.TrainBatchSize, c.TrainMicroBatchSizePerGpu, c.GradientAccumulationSteps }.Count(v => v is not null);
        var batchAuto = c.AutoKeys.Any(k => k is "train_batch_size" or "train_micro_batch_size_per_gpu" or "gradient_accumulation_steps");
        string batch;
        try
        {
            var b = c.ResolveBatchSizes(worldSize, pipelineStages: stages);
            batch = $"train_batch_size={b.TrainBatchSize} micro_batch_per_gpu={b.MicroBatchPerGpu} gradient_accumulation_steps={b.GradientAccumulationSteps} at world size {worldSize}";
        }
        catch (DeepSpeedConfigException) when (batchAuto || batchKeysGiven == 0)
        {
            // Not decidable from the file alone: the program supplies these to DeepSpeed.Initialize.
            batch = $"batch sizes {(batchAuto ? "\"auto\"" : "absent")} (must be passed by the program)";
        }
        var z = c.ZeroOptimization;
        var offload = z.OffloadOptimizer.Enabled || z.OffloadParam.Enabled
            ? $"offload optimizer={z.OffloadOptimizer.Device}{(z.OffloadOptimizer.Ratio != 1 ? $"(ratio {z.OffloadOptimizer.Ratio.ToString(CultureInfo.InvariantCulture)})" : "")} param={z.OffloadParam.Device}"
            : "no offload";
        var pipeline = stages > 1 ? $"pipeline {stages} stages" : "no pipeline";
        return $"{batch}; ZeRO stage {z.Stage}; precision {c.Precision}; {offload}; {pipeline}";
    }
}
