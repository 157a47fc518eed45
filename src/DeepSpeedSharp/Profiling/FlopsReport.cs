using System.Globalization;
using System.Text;

namespace DeepSpeedSharp.Profiling;

/// <summary>What the report shows: DeepSpeed's <c>module_depth</c> (-1 = all), <c>top_modules</c> and <c>detailed</c>.</summary>
/// <param name="ModuleDepth">Deepest level shown in the aggregated and detailed parts (-1 = every level).</param>
/// <param name="TopModules">Modules listed per depth and metric in the aggregated part.</param>
/// <param name="Detailed">Whether to print the per-module tree.</param>
public sealed record FlopsReportOptions(int ModuleDepth = -1, int TopModules = 1, bool Detailed = true);

/// <summary>The training context of a profiled step, for the summary's throughput and utilisation lines.</summary>
/// <param name="Step">Global step that was profiled.</param>
/// <param name="WorldSize">Ranks in the job.</param>
/// <param name="DataParallelSize">Data-parallel ranks.</param>
/// <param name="SamplesPerRank">Samples this rank processed during the step (micro-batch × accumulation steps).</param>
/// <param name="IterLatency">Wall time of the whole step (forward, backward, optimizer), or null when unknown.</param>
/// <param name="PeakFlopsPerRank">Stated peak FLOP/s of one rank's hardware (for MFU), or null.</param>
/// <param name="RecomputeFwdFactor">Extra forward passes recomputed in backward (activation checkpointing), as DeepSpeed's <c>recompute_fwd_factor</c>.</param>
public sealed record FlopsRunInfo(long Step, int WorldSize, int DataParallelSize, long SamplesPerRank, TimeSpan? IterLatency,
    double? PeakFlopsPerRank, double RecomputeFwdFactor = 0);

/// <summary>Formats a <see cref="ModuleProfile"/> tree as DeepSpeed's flops-profiler report (summary, aggregated, detailed).</summary>
public static class FlopsReport
{
    /// <summary>Model FLOP/s of a step: (3 + recompute) × forward FLOPs (backward ≈ 2 × forward) over the step's wall time.</summary>
    public static double ModelFlopsPerSecond(long fwdFlops, TimeSpan iterLatency, double recomputeFwdFactor = 0) =>
        iterLatency > TimeSpan.Zero ? (3 + recomputeFwdFactor) * fwdFlops / iterLatency.TotalSeconds : double.NaN;

    /// <summary>The report text.</summary>
    public static string Format(ModuleProfile root, FlopsRunInfo run, FlopsReportOptions options)
    {
        var sb = new StringBuilder();
        void Line(string label, string value) => sb.Append(label.PadRight(62)).AppendLine(value);
        sb.AppendLine("-------------------------- DeepSpeedSharp Flops Profiler --------------------------");
        sb.AppendLine(Inv($"Profile Summary at step {run.Step}:"));
        sb.AppendLine("Notations: number of parameters (params), multiply-accumulate operations (MACs), floating-point operations (flops),");
        sb.AppendLine("floating-point operations per second (FLOPS), forward latency (fwd latency), model FLOPs utilisation (MFU)");
        sb.AppendLine();
        Line("world size:", Inv($"{run.WorldSize}"));
        Line("data parallel size:", Inv($"{run.DataParallelSize}"));
        Line("samples per rank in the step:", Inv($"{run.SamplesPerRank}"));
        Line("params per rank:", Count(root.Parameters, ""));
        Line("fwd MACs per rank:", Count(root.Macs, "MACs"));
        Line("fwd flops per rank:", Count(root.Flops, ""));
        Line("fwd latency:", Time(root.Latency));
        Line("fwd FLOPS per rank = fwd flops / fwd latency:", Rate(root.Flops, root.Latency));
        if (run.IterLatency is { } iter)
        {
            double model = ModelFlopsPerSecond(root.Flops, iter, run.RecomputeFwdFactor);
            Line("bwd + step latency = iter latency - fwd latency:", Time(iter - root.Latency));
            Line("iter latency:", Time(iter));
            Line(Inv($"model FLOPS per rank = {3 + run.RecomputeFwdFactor:0.##} * fwd flops / iter latency:"), Count(model, "FLOPS"));
            Line("MFU = model FLOPS / peak FLOPS:", run.PeakFlopsPerRank is > 0 and var peak
                ? Inv($"{100 * model / peak:F2}% of {Count(peak, "FLOPS")}")
                : "n/a (no peak stated: set flops_profiler.peak_tflops to one rank's peak TFLOP/s)");
            Line("samples/second per rank:", Inv($"{run.SamplesPerRank / iter.TotalSeconds:F2}"));
        }
        int maxDepth = options.ModuleDepth < 0 ? int.MaxValue : options.ModuleDepth;
        var all = root.Flatten().Where(m => m.Depth <= maxDepth).ToList();
        if (options.TopModules > 0)
        {
            sb.AppendLine().AppendLine("----------------------------- Aggregated Profile per rank -----------------------------");
            sb.AppendLine(Inv($"Top {options.TopModules} modules in terms of params, MACs or fwd latency at different model depths:"));
            foreach (var depth in all.GroupBy(m => m.Depth).OrderBy(g => g.Key))
            {
                var byType = depth.GroupBy(m => m.TypeName).Select(g => (Type: g.Key, Params: g.Sum(m => m.Parameters),
                    Macs: g.Sum(m => m.Macs), Latency: g.Aggregate(TimeSpan.Zero, (t, m) => t + m.Latency))).ToList();
                string Top<T>(Func<(string Type, long Params, long Macs, TimeSpan Latency), T> key, Func<(string Type, long Params, long Macs, TimeSpan Latency), string> show) =>
                    "{" + string.Join(", ", byType.OrderByDescending(key).ThenBy(t => t.Type, StringComparer.Ordinal).Take(options.TopModules)
                        .Select(t => $"'{t.Type}': '{show(t)}'")) + "}";
                sb.AppendLine(Inv($"depth {depth.Key}:"));
                sb.AppendLine("    params      - " + Top(t => t.Params, t => Count(t.Params, "")));
                sb.AppendLine("    MACs        - " + Top(t => t.Macs, t => Count(t.Macs, "MACs")));
                sb.AppendLine("    fwd latency - " + Top(t => t.Latency, t => Time(t.Latency)));
            }
        }
        if (options.Detailed)
        {
            sb.AppendLine().AppendLine("------------------------------ Detailed Profile per rank ------------------------------");
            sb.AppendLine("Each module profile is listed after its name in the following order:");
            sb.AppendLine("params, percentage of total params, MACs, percentage of total MACs, fwd latency, percentage of total fwd latency, fwd FLOPS");
            sb.AppendLine();
            Detail(sb, root, root, maxDepth, "");
        }
        sb.AppendLine("------------------------------------------------------------------------------------------");
        return sb.ToString();
    }

    private static void Detail(StringBuilder sb, ModuleProfile m, ModuleProfile root, int maxDepth, string indent)
    {
        string name = m.Depth == 0 ? m.TypeName : $"({m.Name[(m.Name.LastIndexOf('.') + 1)..]}): {m.TypeName}";
        sb.Append(indent).Append(name).AppendLine("(");
        sb.Append(indent).Append("  ").AppendLine(
            $"{Count(m.Parameters, "")}, {Pct(m.Parameters, root.Parameters)} Params, {Count(m.Macs, "MACs")}, {Pct(m.Macs, root.Macs)} MACs, " +
            $"{Time(m.Latency)}, {Pct(m.Latency.Ticks, root.Latency.Ticks)} latency, {Rate(m.Flops, m.Latency)},");
        if (m.Depth < maxDepth)
            foreach (var c in m.Children) Detail(sb, c, root, maxDepth, indent + "  ");
        sb.Append(indent).AppendLine(")");
    }

    /// <summary>A count with an SI prefix: "1.23 M", "4.5 GMACs".</summary>
    public static string Count(double value, string unit)
    {
        string[] prefixes = ["", "K", "M", "G", "T", "P"];
        int i = 0;
        while (Math.Abs(value) >= 1000 && i < prefixes.Length - 1) { value /= 1000; i++; }
        string space = unit.Length > 0 || prefixes[i].Length > 0 ? " " : "";
        return Inv($"{value:0.##}{space}{prefixes[i]}{unit}");
    }

    private static string Rate(long flops, TimeSpan latency) =>
        latency > TimeSpan.Zero ? Count(flops / latency.TotalSeconds, "FLOPS") : "n/a";

    private static string Time(TimeSpan t) =>
        t.TotalSeconds >= 1 ? Inv($"{t.TotalSeconds:F2} s") : t.TotalMilliseconds >= 1 ? Inv($"{t.TotalMilliseconds:F2} ms") : Inv($"{t.TotalMicroseconds:F2} us");

    private static string Pct(long part, long whole) => whole > 0 ? Inv($"{100.0 * part / whole:F2}%") : "0.00%";

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
