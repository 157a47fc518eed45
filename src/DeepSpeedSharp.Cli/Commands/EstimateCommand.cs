using System.CommandLine;
using DeepSpeedSharp.CommandLine;
using System.Globalization;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Zero;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss estimate (--params N [--largest-layer N] | --model "SAMPLE-FLAGS" [--gpt PATH]) [--ranks R] [--nodes K] [--stage S]
/// [--config FILE] [--bf16 | --fp16] [--offload-optimizer] [--offload-param]</c>: the model-state bytes per rank and per host
/// for each ZeRO option, as DeepSpeed's <c>estimate_zero2/3_model_states_mem_needs_all_live</c> print them
/// (<see cref="ZeroMemoryEstimator"/>). The size is given (<c>--params</c>) or measured: <c>--model</c> runs the sample GPT
/// (Gpt.dll, found as <c>dss bench train</c> finds it) with those model flags and <c>--describe-parameters</c>, which builds
/// the model on the meta device and reports its trainable parameters and largest parameter tensor.
/// Without <c>--stage</c> every stage is listed; without offload flags every valid offload choice. Exit 0, or 2 on usage
/// errors, a missing Gpt.dll or a sample that rejects the flags.
/// </summary>
public sealed class EstimateCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "estimate";

    /// <inheritdoc/>
    public override string Summary => "model-state memory per rank and host for each ZeRO stage and offload choice: estimate --params 1.3G --ranks 8, or --model \"SAMPLE-FLAGS\"";

    /// <inheritdoc/>
    public override Command CreateCommand()
    {
        ValueParser<long?> size = (string s, out long? v) => (v = BenchAdamCommand.ParseSize(s, long.MaxValue)) != null;
        var parameters = CliOptions.Value("--params", "N", "trainable parameters: 10M, 1.3G or a plain integer (this or --model is required)", size,
            "a positive size such as 52.6M or 1.3G", null, showDefault: false);
        var largest = CliOptions.Value("--largest-layer", "N", "elements of the largest parameter tensor (default: none counted)", size,
            "a positive size", null, showDefault: false);
        var model = CliOptions.Text("--model", "SAMPLE-FLAGS",
            "measure the sample GPT built from these model flags instead of --params, e.g. \"--vocab 8192 --d-model 512 --layers 14 --heads 8 --seq 64\"");
        var gpt = CliOptions.Text("--gpt", "PATH", "with --model: the sample's Gpt.dll (default: beside dss, else samples/Gpt/bin/{Release,Debug})");
        var ranks = CliOptions.Int("--ranks", "ranks per node", 1, valueName: "R");
        var nodes = CliOptions.Int("--nodes", "nodes", 1, valueName: "K");
        var stage = CliOptions.Value<int?>("--stage", "S", "ZeRO stage 0-3 (default: every stage)",
            (string s, out int? v) => (v = int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var st) && st <= 3 ? st : null) != null,
            "0, 1, 2 or 3", null, showDefault: false);
        var configFile = CliOptions.Text("--config", "FILE", "take precision, 16-bit masters, offload and bucket sizes from a DeepSpeed config");
        var bf16 = CliOptions.Flag("--bf16", "bf16 model weights (default fp32)");
        var fp16 = CliOptions.Flag("--fp16", "fp16 model weights (default fp32)");
        var offloadOptimizer = CliOptions.Flag("--offload-optimizer", "only the rows with offload_optimizer cpu");
        var offloadParam = CliOptions.Flag("--offload-param", "only the rows with offload_optimizer and offload_param cpu (stage 3)");
        var command = new Command(Name, "Model-state bytes per rank and per host for each ZeRO stage and offload choice, as DeepSpeed's " +
                                        "estimate_zero2/3_model_states_mem_needs_all_live print them (activations not included). Give the size with --params, or " +
                                        "--model to measure the sample GPT built from those flags (its trainable parameters and largest parameter tensor).")
        {
            parameters, largest, model, gpt, ranks, nodes, stage, configFile, bf16, fp16, offloadOptimizer, offloadParam,
        };
        command.SetAction(r =>
        {
            if (r.GetValue(bf16) && r.GetValue(fp16)) throw Usage("give --bf16 or --fp16, not both");
            long? given = r.GetValue(parameters);
            string? flags = r.GetValue(model);
            if ((given is null) == (flags is null)) throw Usage("give exactly one of --params N or --model \"SAMPLE-FLAGS\"");
            if (flags != null && r.GetValue(largest) != null) throw Usage("--largest-layer goes with --params; --model measures the largest parameter itself");
            if (flags is null && r.GetValue(gpt) != null) throw Usage("--gpt PATH goes with --model \"SAMPLE-FLAGS\"");
            var stderr = r.InvocationConfiguration.Error;
            var size = flags is null ? (given!.Value, r.GetValue(largest)) : Measure(flags, r.GetValue(gpt), stderr);
            if (size is not var (count, biggest)) return 2;
            return Estimate(count, biggest, flags, r.GetValue(ranks), r.GetValue(nodes),
                r.GetValue(stage), r.GetValue(configFile), r.GetValue(bf16) ? "bf16" : r.GetValue(fp16) ? "fp16" : null,
                r.GetValue(offloadOptimizer) || r.GetValue(offloadParam), r.GetValue(offloadParam),
                r.InvocationConfiguration.Output, stderr);
        });
        return command;
    }

    /// <summary>
    /// The sample GPT's size for <paramref name="flags"/>, or null after one line on <paramref name="stderr"/> naming the
    /// missing Gpt.dll or the sample's error.
    /// </summary>
    private static (long, long?)? Measure(string flags, string? gpt, TextWriter stderr)
    {
        try
        {
            var (count, biggest) = SampleGpt.DescribeParameters(SampleGpt.Resolve(gpt), flags);
            return (count, biggest);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            stderr.WriteLine($"dss estimate: error: {e.Message}");
            return null;
        }
    }

    private static int Estimate(long parameters, long? largest, string? modelFlags, int ranks, int nodes, int? stage, string? configFile, string? precision,
        bool offloadOptimizer, bool offloadParam, TextWriter stdout, TextWriter stderr)
    {
        DeepSpeedConfig config;
        try
        {
            config = configFile is null ? DeepSpeedConfig.FromJson(precision is null ? "{}" : $"{{\"{precision}\": {{\"enabled\": true}}}}")
                : DeepSpeedConfig.FromFile(configFile);
        }
        catch (DeepSpeedConfigException e)
        {
            stderr.WriteLine($"dss estimate: {e.Message}");
            return 2;
        }
        var baseSetup = ZeroMemorySetup.FromConfig(config, parameters, largest ?? 0, ranks, nodes);
        string measured = modelFlags is null ? "" : F($" (largest {largest:N0}) of the sample GPT {modelFlags.Trim()}");
        stdout.WriteLine(F($"Model states for {parameters:N0} parameters{measured} on {nodes} node(s) × {ranks} rank(s) ({(baseSetup.ModelBytes == 2 ? "16-bit" : "fp32")} model, ") +
                         F($"{(baseSetup.MasterBytes == 2 ? "16-bit" : "fp32")} masters, {(baseSetup.MomentBytes == 2 ? "16-bit" : "fp32")} Adam moments); activations not included"));
        stdout.WriteLine($"{"stage",5}  {"offload",-15} {"params/rank",12} {"grads/rank",12} {"optim/rank",12} {"total/rank",12} {"host part",12} {"total/host",12}");
        // The cheapest stage so far for each offload choice: a higher stage that needs more gets a note under its row.
        var cheapest = new Dictionary<string, (int Stage, ZeroMemoryEstimate Estimate)>();
        foreach (int st in stage is { } only ? new[] { only } : new[] { 0, 1, 2, 3 })
            foreach (var (opt, par) in Choices(st, configFile is null ? (offloadOptimizer, offloadParam) : (baseSetup.OffloadOptimizer, baseSetup.OffloadParam),
                         explicitChoice: offloadOptimizer || configFile is not null))
            {
                var setup = baseSetup with { Stage = st, OffloadOptimizer = opt, OffloadParam = par };
                var e = ZeroMemoryEstimator.PerRank(setup);
                string label = par ? "optimizer+param" : opt ? "optimizer" : "none";
                stdout.WriteLine($"{st,5}  {label,-15} {Gb(e.Parameters),12} {Gb(e.Gradients),12} {Gb(e.OptimizerState),12} {Gb(e.Total),12} {Gb(e.OnHost),12} {Gb(e.Total * ranks),12}");
                if (!cheapest.TryGetValue(label, out var best) || e.Total < best.Estimate.Total) cheapest[label] = (st, e);
                else if (StageCostNote.For(setup, e, best.Stage, best.Estimate) is { } note) stdout.WriteLine($"       {note}");
            }
        return 0;
    }

    /// <summary>The offload choices to list for a stage: the one asked for, or every valid one.</summary>
    private static IEnumerable<(bool Optimizer, bool Param)> Choices(int stage, (bool Optimizer, bool Param) asked, bool explicitChoice)
    {
        if (explicitChoice)
        {
            if (stage == 0 && asked.Optimizer) yield break; // offload needs ZeRO ≥ 1
            yield return (asked.Optimizer, asked.Param && stage == 3);
            yield break;
        }
        yield return (false, false);
        if (stage >= 1) yield return (true, false);
        if (stage == 3) yield return (true, true);
    }

    /// <summary>Bytes as the table shows them ("1.234 GB").</summary>
    internal static string Gb(long bytes) => F($"{bytes / 1e9:F3} GB");

    /// <summary>The text with invariant-culture numbers.</summary>
    internal static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
