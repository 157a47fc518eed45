using System.Globalization;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Zero;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss estimate --params N [--largest-layer N] [--ranks R] [--nodes K] [--stage S] [--config FILE] [--bf16 | --fp16]
/// [--offload-optimizer] [--offload-param]</c>: the model-state bytes per rank and per host for each ZeRO option, as
/// DeepSpeed's <c>estimate_zero2/3_model_states_mem_needs_all_live</c> print them (<see cref="ZeroMemoryEstimator"/>).
/// Without <c>--stage</c> every stage is listed; without offload flags every valid offload choice. Exit 0, or 2 on usage errors.
/// </summary>
public sealed class EstimateCommand : ICliCommand
{
    private const string Usage = "usage: dss estimate --params N [--largest-layer N] [--ranks R] [--nodes K] [--stage S] " +
                                 "[--config FILE] [--bf16 | --fp16] [--offload-optimizer] [--offload-param]";

    /// <inheritdoc/>
    public string Name => "estimate";

    /// <inheritdoc/>
    public string Summary => "model-state memory per rank and host for each ZeRO stage and offload choice: estimate --params 1.3G --ranks 8";

    /// <inheritdoc/>
    public int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs with explicit writers (for tests).</summary>
    public int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        long? parameters = null, largest = null;
        int ranks = 1, nodes = 1;
        int? stage = null;
        string? configFile = null, precision = null;
        bool offloadOptimizer = false, offloadParam = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "-h" or "--help")
            {
                stdout.WriteLine(Usage);
                stdout.WriteLine("  --params N           trainable parameters (10M, 1.3G, or a plain integer)");
                stdout.WriteLine("  --largest-layer N    elements of the largest parameter tensor (default: none counted)");
                stdout.WriteLine("  --ranks R            ranks per node (default 1)");
                stdout.WriteLine("  --nodes K            nodes (default 1)");
                stdout.WriteLine("  --stage S            ZeRO stage 0-3 (default: all)");
                stdout.WriteLine("  --config FILE        take precision, 16-bit masters, offload and bucket sizes from a DeepSpeed config");
                stdout.WriteLine("  --bf16, --fp16       16-bit model weights (default fp32)");
                stdout.WriteLine("  --offload-optimizer  only the rows with offload_optimizer cpu; --offload-param: also offload_param cpu (stage 3)");
                return 0;
            }
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            string? error = null;
            switch (a)
            {
                case "--params":
                    parameters = BenchAdamCommand.ParseSize(Value() ?? "", long.MaxValue);
                    if (parameters is null) error = "--params needs a positive size such as 52.6M or 1.3G";
                    break;
                case "--largest-layer":
                    largest = BenchAdamCommand.ParseSize(Value() ?? "", long.MaxValue);
                    if (largest is null) error = "--largest-layer needs a positive size";
                    break;
                case "--ranks":
                    if (!int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out ranks) || ranks < 1) error = "--ranks needs a positive integer";
                    break;
                case "--nodes":
                    if (!int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out nodes) || nodes < 1) error = "--nodes needs a positive integer";
                    break;
                case "--stage":
                    if (int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var st) && st <= 3) stage = st;
                    else error = "--stage needs 0, 1, 2 or 3";
                    break;
                case "--config":
                    configFile = Value();
                    if (configFile is null) error = "--config needs a file";
                    break;
                case "--bf16" or "--fp16":
                    if (precision is not null && precision != a[2..]) error = "give --bf16 or --fp16, not both";
                    precision = a[2..];
                    break;
                case "--offload-optimizer":
                    offloadOptimizer = true;
                    break;
                case "--offload-param":
                    offloadParam = offloadOptimizer = true;
                    break;
                default:
                    error = $"unknown option '{a}'";
                    break;
            }
            if (error != null)
            {
                stderr.WriteLine($"dss estimate: {error}; {Usage}");
                return 2;
            }
        }
        if (parameters is null)
        {
            stderr.WriteLine($"dss estimate: --params is required; {Usage}");
            return 2;
        }
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
        var baseSetup = ZeroMemorySetup.FromConfig(config, parameters.Value, largest ?? 0, ranks, nodes);
        stdout.WriteLine(F($"Model states for {parameters:N0} parameters on {nodes} node(s) × {ranks} rank(s) ({(baseSetup.ModelBytes == 2 ? "16-bit" : "fp32")} model, ") +
                         F($"{(baseSetup.MasterBytes == 2 ? "16-bit" : "fp32")} masters, {(baseSetup.MomentBytes == 2 ? "16-bit" : "fp32")} Adam moments); activations not included"));
        stdout.WriteLine($"{"stage",5}  {"offload",-15} {"params/rank",12} {"grads/rank",12} {"optim/rank",12} {"total/rank",12} {"host part",12} {"total/host",12}");
        foreach (int st in stage is { } only ? new[] { only } : new[] { 0, 1, 2, 3 })
            foreach (var (opt, par) in Choices(st, configFile is null ? (offloadOptimizer, offloadParam) : (baseSetup.OffloadOptimizer, baseSetup.OffloadParam),
                         explicitChoice: offloadOptimizer || configFile is not null))
            {
                var e = ZeroMemoryEstimator.PerRank(baseSetup with { Stage = st, OffloadOptimizer = opt, OffloadParam = par });
                string label = par ? "optimizer+param" : opt ? "optimizer" : "none";
                stdout.WriteLine($"{st,5}  {label,-15} {Gb(e.Parameters),12} {Gb(e.Gradients),12} {Gb(e.OptimizerState),12} {Gb(e.Total),12} {Gb(e.OnHost),12} {Gb(e.Total * ranks),12}");
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

    private static string Gb(long bytes) => F($"{bytes / 1e9:F3} GB");

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
