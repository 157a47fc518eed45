using System.Globalization;
using System.CommandLine;
using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss validate-config FILE... [--world-size N] [--strict]</c>: reads each DeepSpeed config and prints
/// <c>FILE: ok</c> with a one-line summary, or <c>FILE: error: MESSAGE</c>; then each key present that has no effect
/// here as <c>FILE: no effect: KEY: REASON</c> (errors with <c>--strict</c>), and warnings as <c>FILE: warning: ...</c>.
/// Exit code 0 when all files are valid, 1 when any is invalid, 2 on usage errors.
/// </summary>
public sealed class ValidateConfigCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "validate-config";

    /// <inheritdoc/>
    public override string Summary => "check DeepSpeed config files: validate-config FILE... [--world-size N] [--strict]";

    /// <inheritdoc/>
    public override Command CreateCommand()
    {
        var files = CliOptions.Positional<string[]>("FILE", "DeepSpeed config files (JSON) to check", ArgumentArity.ZeroOrMore);
        var worldSize = CliOptions.Int("--world-size", "data-parallel world size for the batch-size arithmetic", 1);
        var strict = CliOptions.Flag("--strict", "keys that have no effect in DeepSpeedSharp are errors");
        var command = new Command(Name, "Check DeepSpeed config files: print FILE: ok with the resolved batch sizes, ZeRO stage, " +
                                        "precision and offload, or FILE: error: MESSAGE. Exit 0 when all are valid, 1 otherwise.")
        {
            files, worldSize, strict,
        };
        command.SetAction(r => Validate(r.GetValue(files) ?? [], r.GetValue(worldSize), r.GetValue(strict), r.InvocationConfiguration.Output));
        return command;
    }

    /// <summary>Checks each file; 0 when all are valid, 1 otherwise.</summary>
    private static int Validate(IReadOnlyList<string> files, int worldSize, bool strict, TextWriter stdout)
    {
        if (files.Count == 0) throw Usage("no config files given");

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
        // With pipeline stages, the batch is split over the data-parallel ranks only: world / stages of them.
        int? dataParallel = worldSize % stages == 0 ? worldSize / stages : null;
        var batchKeysGiven = new[] { c.TrainBatchSize, c.TrainMicroBatchSizePerGpu, c.GradientAccumulationSteps }.Count(v => v is not null);
        var batchAuto = c.AutoKeys.Any(k => k is "train_batch_size" or "train_micro_batch_size_per_gpu" or "gradient_accumulation_steps");
        string batch;
        try
        {
            var b = c.ResolveBatchSizes(dataParallel ?? throw new DeepSpeedConfigException($"pipeline.stages {stages} does not divide the world size {worldSize}"),
                pipelineStages: stages);
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
        var pipeline = stages <= 1 ? "no pipeline"
            : dataParallel is { } dp ? $"pipeline {stages} stages × data parallel {dp}" : $"pipeline {stages} stages, which do not divide world size {worldSize}";
        return $"{batch}; ZeRO stage {z.Stage}; precision {c.Precision}; {offload}; {pipeline}";
    }
}
