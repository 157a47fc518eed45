using System.Globalization;
using System.CommandLine;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Topology;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss validate-config FILE... [--world-size N] [--pipeline N] [--tensor N] [--strict]</c>: reads each DeepSpeed config,
/// lays the world out as the job would (<see cref="ParallelLayout.Plan"/>: pipeline × tensor × data parallel), checks it
/// with the rules <c>DeepSpeed.Initialize</c> uses (<see cref="ParallelLayout.Validate"/>) and prints <c>FILE: ok</c> with
/// a one-line summary (batch sizes, layout, precision, offload), or <c>FILE: error: MESSAGE</c>; then each key present that has no effect
/// here as <c>FILE: no effect: KEY: REASON</c> (errors with <c>--strict</c>), and warnings as <c>FILE: warning: ...</c>.
/// Exit code 0 when all files are valid, 1 when any is invalid, 2 on usage errors.
/// </summary>
public sealed class ValidateConfigCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "validate-config";

    /// <inheritdoc/>
    public override string Summary => "check DeepSpeed config files: validate-config FILE... [--world-size N] [--pipeline N] [--tensor N] [--strict]";

    /// <inheritdoc/>
    public override Command CreateCommand()
    {
        var files = CliOptions.Positional<string[]>("FILE", "DeepSpeed config files (JSON) to check", ArgumentArity.ZeroOrMore);
        var worldSize = CliOptions.Int("--world-size", "ranks in the job (pipeline × tensor × data parallel)", 1);
        var pipeline = CliOptions.Value<int?>("--pipeline", "N", "pipeline stages (default: the config's pipeline.stages when it is a number, else 1)",
            (string t, out int? v) => (v = int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 ? n : null) != null,
            "a positive integer", null, showDefault: false);
        var tensor = CliOptions.Int("--tensor", "tensor-parallel ranks", 1);
        var strict = CliOptions.Flag("--strict", "keys that have no effect in DeepSpeedSharp are errors");
        var command = new Command(Name, "Check DeepSpeed config files against a parallel layout with the rules DeepSpeed.Initialize uses: print " +
                                        "FILE: ok with the resolved batch sizes, the layout, precision and offload, or FILE: error: MESSAGE. " +
                                        "Exit 0 when all are valid, 1 otherwise.")
        {
            files, worldSize, pipeline, tensor, strict,
        };
        command.SetAction(r => Validate(r.GetValue(files) ?? [], new LayoutFlags(r.GetValue(worldSize), r.GetValue(pipeline), r.GetValue(tensor)),
            r.GetValue(strict), r.InvocationConfiguration.Output));
        return command;
    }

    /// <summary>Checks each file; 0 when all are valid, 1 otherwise.</summary>
    private static int Validate(IReadOnlyList<string> files, LayoutFlags flags, bool strict, TextWriter stdout)
    {
        if (files.Count == 0) throw Usage("no config files given");

        var allValid = true;
        foreach (var file in files)
        {
            try
            {
                var config = DeepSpeedConfig.FromFile(file);
                var summary = Summarise(config, flags);
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

    /// <summary>The layout given on the command line: the world, and pipeline (null: the config's) and tensor sizes.</summary>
    internal sealed record LayoutFlags(int WorldSize, int? Pipeline = null, int Tensor = 1);

    /// <summary>
    /// Batch sizes over the layout's data-parallel ranks; the layout; ZeRO stage; precision; offload. Throws a
    /// <see cref="DeepSpeedConfigException"/> listing every rule the layout breaks, or on an invalid batch setup.
    /// </summary>
    internal static string Summarise(DeepSpeedConfig c, LayoutFlags flags)
    {
        var layout = ParallelLayout.Plan(c, flags.WorldSize, flags.Pipeline, flags.Tensor);
        layout.Validate();
        var batchKeysGiven = new[] { c.TrainBatchSize, c.TrainMicroBatchSizePerGpu, c.GradientAccumulationSteps }.Count(v => v is not null);
        var batchAuto = c.AutoKeys.Any(k => k is "train_batch_size" or "train_micro_batch_size_per_gpu" or "gradient_accumulation_steps");
        string batch;
        try
        {
            var b = layout.ResolveBatchSizes();
            batch = $"train_batch_size={b.TrainBatchSize} micro_batch_per_gpu={b.MicroBatchPerGpu} gradient_accumulation_steps={b.GradientAccumulationSteps} at world size {flags.WorldSize}";
        }
        catch (DeepSpeedConfigException) when ((batchAuto || batchKeysGiven == 0) && !c.Elasticity.Enabled)
        {
            // Not decidable from the file alone: the program supplies these to DeepSpeed.Initialize.
            batch = $"batch sizes {(batchAuto ? "\"auto\"" : "absent")} (must be passed by the program)";
        }
        var z = c.ZeroOptimization;
        var offload = z.OffloadOptimizer.Enabled || z.OffloadParam.Enabled
            ? $"offload optimizer={z.OffloadOptimizer.Device}{(z.OffloadOptimizer.Ratio != 1 ? $"(ratio {z.OffloadOptimizer.Ratio.ToString(CultureInfo.InvariantCulture)})" : "")} param={z.OffloadParam.Device}"
            : "no offload";
        return $"{batch}; {layout}; precision {c.Precision}; {offload}";
    }
}
