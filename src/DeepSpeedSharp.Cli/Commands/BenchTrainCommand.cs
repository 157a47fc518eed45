using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss bench train`: trains the sample GPT under N ranks (through `dss launch`) once per DeepSpeed config and prints a
/// table of tokens/s (median step after warm-up), step-time breakdown, peak RSS and model-state bytes per rank, bytes
/// sent per step, model TFLOPS (flops profiler count × 3 / median step) and final loss. With --compare the configs run
/// alternately for several rounds and each figure is also given as a ratio to the first config measured in the same
/// round, so comparisons survive a noisy machine.
/// </summary>
public sealed class BenchTrainCommand : CliCommand
{
    /// <summary>The reference model of the ZeRO issue: vocab 512, d_model 128, 4 layers, 4 heads, seq 64 (the micro-batch, 8, comes from the configs).</summary>
    public const string ReferenceModel = "--vocab 512 --d-model 128 --layers 4 --heads 4 --seq 64";

    private static readonly string[] Timers = ["forward", "backward", "backward_inner", "backward_allreduce", "step"];

    /// <inheritdoc/>
    public override string Name => "bench train";

    /// <inheritdoc/>
    public override string Summary => "--ranks 2 --steps 100 [--compare [--rounds 3]] cfg0.json cfg1.json ...";

    /// <summary>One finished run of one config.</summary>
    public sealed record RunResult(string Config, int Round, double TokensPerSecond, Dictionary<string, double> TimerMs,
        long[] PeakRssMiB, long[] StateBytes, long[] BytesSent, double FinalLoss, double FwdFlopsPerRank, double MedianStepMs);

    /// <inheritdoc/>
    public override Command CreateCommand()
    {
        var configs = CliOptions.Positional<string[]>("CONFIG", "DeepSpeed config files (JSON), one run per config and round", ArgumentArity.OneOrMore);
        var ranks = CliOptions.Int("--ranks", "ranks to train on (through dss launch)", 2);
        var steps = CliOptions.Int("--steps", "training steps per run", 100, min: 2);
        var warmup = CliOptions.Int("--warmup", "steps left out of the medians (smaller than --steps)", 10, min: 2);
        var threads = CliOptions.Int("--threads", "OMP_NUM_THREADS of each rank", 1);
        var compare = CliOptions.Flag("--compare", "run the configs alternately for several rounds and add each one's tokens/s ratio to the first config's");
        var rounds = CliOptions.Int("--rounds", "rounds of all configs (default 3 with --compare, else 1)", 1);
        rounds.DefaultValueFactory = null;
        var peakTflops = CliOptions.Value<double?>("--peak-tflops", "X", "the machine's peak TFLOPS per rank, to print MFU",
            (string s, out double? v) => (v = double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && t > 0 ? t : null) != null,
            "a positive number", null, showDefault: false);
        var model = CliOptions.Value("--model", "ARGS", "the sample GPT's model flags", (string s, out string v) => (v = s).Length > 0, "the model's flags", ReferenceModel);
        var gpt = CliOptions.Text("--gpt", "PATH", "the sample's Gpt.dll (default: beside dss, else samples/Gpt/bin/{Release,Debug})");
        var keep = CliOptions.Text("--keep", "DIR", "keep each run's output, config and monitor files in DIR (default: a temporary folder, deleted)");
        var command = new Command("train", "Train the sample GPT under N ranks (through dss launch) once per DeepSpeed config and print tokens/s, the " +
                                        "step-time breakdown, peak RSS, model-state bytes, bytes sent per step, TFLOPS and the final loss.")
        {
            configs, ranks, steps, warmup, threads, compare, rounds, peakTflops, model, gpt, keep,
        };
        command.SetAction(r => Bench(r.GetValue(configs)!.ToList(), r.GetValue(ranks), r.GetValue(steps), r.GetValue(warmup), r.GetValue(threads),
            r.GetValue(compare), r.GetResult(rounds) is { Implicit: false } ? r.GetValue(rounds) : 0, r.GetValue(peakTflops), r.GetValue(model)!, r.GetValue(gpt), r.GetValue(keep)));
        return command;
    }

    private static int Bench(List<string> configs, int ranks, int steps, int warmup, int threads, bool compare, int rounds, double? peakTflops,
        string model, string? gpt, string? keep)
    {
        if (warmup >= steps) throw Usage($"--warmup ({warmup}) must be smaller than --steps ({steps})");
        foreach (var c in configs) if (!File.Exists(c)) throw new FileNotFoundException($"config file '{c}' not found");
        if (compare && configs.Count < 2) throw Usage("--compare needs at least two configs");
        rounds = rounds > 0 ? rounds : compare ? 3 : 1;
        string gptDll = SampleGpt.Resolve(gpt);
        string root = keep != null ? Directory.CreateDirectory(keep).FullName : Directory.CreateTempSubdirectory("dss-bench-train").FullName;

        Console.WriteLine($"# dss bench train: ranks={ranks} OMP_NUM_THREADS={threads} steps={steps} warm-up={warmup} rounds={rounds} model: {model}");
        var results = new List<RunResult>();
        for (int round = 1; round <= rounds; round++)
            for (int c = 0; c < configs.Count; c++)
            {
                string dir = Directory.CreateDirectory(Path.Combine(root, $"r{round}-c{c}")).FullName;
                var r = RunOnce(configs[c], round, dir, ranks, steps, warmup, threads, model, gptDll, peakTflops);
                results.Add(r);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# round {round} {Path.GetFileName(configs[c])}: {r.TokensPerSecond:F0} tokens/s, median step {r.MedianStepMs:F1} ms, final loss {r.FinalLoss:F4}"));
            }
        Console.WriteLine(FormatTable(configs, results, ranks, compare, peakTflops));
        if (keep == null) Directory.Delete(root, recursive: true);
        return 0;
    }

    /// <summary>The user's config plus what the bench reads back: per-step timers through csv_monitor, and the flops profiler's count.</summary>
    public static string DerivedConfig(string configPath, string dir, int profileStep, double? peakTflops = null)
    {
        var node = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
            ?? throw new InvalidDataException($"{configPath}: a DeepSpeed config must be a JSON object");
        node["wall_clock_breakdown"] = true;
        node["steps_per_print"] = 1;
        node["csv_monitor"] = new JsonObject { ["enabled"] = true, ["output_path"] = dir, ["job_name"] = "bench" };
        node["flops_profiler"] = new JsonObject
        {
            ["enabled"] = true, ["profile_step"] = profileStep, ["top_modules"] = 0, ["detailed"] = false,
            ["output_file"] = Path.Combine(dir, "flops.txt"),
        };
        if (peakTflops is { } peak) node["flops_profiler"]!["peak_tflops"] = peak;
        string path = Path.Combine(dir, "ds_config.json");
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    private static RunResult RunOnce(string config, int round, string dir, int ranks, int steps, int warmup, int threads, string model, string gptDll, double? peak)
    {
        string derived = DerivedConfig(config, dir, profileStep: 1, peak);
        string dss = typeof(BenchTrainCommand).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        foreach (var a in new[] { dss, "launch", "--num_gpus", ranks.ToString(CultureInfo.InvariantCulture), "--master_port", FreePort(), gptDll })
            psi.ArgumentList.Add(a);
        foreach (var a in model.Split(' ', StringSplitOptions.RemoveEmptyEntries)) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "--steps", steps.ToString(CultureInfo.InvariantCulture), "--warmup-steps", warmup.ToString(CultureInfo.InvariantCulture), "--deepspeed_config", derived })
            psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        using var proc = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var stderr = proc.StandardError.ReadToEndAsync();
        string stdout = proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        File.WriteAllText(Path.Combine(dir, "output.txt"), stdout + stderr.Result);
        if (proc.ExitCode != 0)
            throw new InvalidOperationException($"training with {config} exited with code {proc.ExitCode}; last output:\n{Tail(stdout + stderr.Result, 20)}");
        return Parse(config, round, stdout, dir, ranks, warmup);
    }

    /// <summary>Reads one run back: the ranks' `gpt: summary` lines, the per-step timer CSVs (after warm-up) and the profiler's forward flops.</summary>
    public static RunResult Parse(string config, int round, string output, string dir, int ranks, int warmup)
    {
        var summaries = new SortedDictionary<int, JsonElement>();
        foreach (var line in output.Split('\n'))
        {
            int at = line.IndexOf("gpt: summary ", StringComparison.Ordinal);
            if (at < 0) continue;
            var json = JsonDocument.Parse(line[(at + "gpt: summary ".Length)..]).RootElement;
            summaries[json.GetProperty("rank").GetInt32()] = json.Clone();
        }
        if (summaries.Count != ranks)
            throw new InvalidDataException($"expected a 'gpt: summary' line from each of {ranks} ranks, got {summaries.Count} (ranks {string.Join(",", summaries.Keys)}); output:\n{Tail(output, 20)}");
        var s0 = summaries[0];
        var timers = new Dictionary<string, double>();
        foreach (var t in Timers)
        {
            string csv = Path.Combine(dir, "bench", $"Train_Samples_elapsed_time_ms_{t}.csv");
            if (!File.Exists(csv)) continue;
            var values = File.ReadAllLines(csv).Skip(1 + warmup)
                .Select(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)).ToList();
            if (values.Count > 0) timers[t] = Median(values);
        }
        double fwdFlops = double.NaN;
        string flopsFile = Path.Combine(dir, "flops.txt");
        if (File.Exists(flopsFile))
            foreach (var line in File.ReadLines(flopsFile))
                if (line.StartsWith("fwd flops per rank:", StringComparison.Ordinal)) fwdFlops = ParseSi(line["fwd flops per rank:".Length..].Trim());
        long[] PerRank(Func<JsonElement, long> f) => summaries.Values.Select(f).ToArray();
        return new RunResult(config, round, s0.GetProperty("tokens_per_s").GetDouble(), timers,
            PerRank(e => e.GetProperty("peak_rss_mib").GetInt64()),
            PerRank(e => e.GetProperty("parameter_bytes").GetInt64() + e.GetProperty("gradient_bytes").GetInt64() + e.GetProperty("optimizer_state_bytes").GetInt64()),
            PerRank(e => e.GetProperty("bytes_sent_last_step").GetInt64()),
            s0.GetProperty("final_loss").ValueKind == JsonValueKind.Number ? s0.GetProperty("final_loss").GetDouble() : double.NaN,
            fwdFlops, s0.GetProperty("median_step_ms").GetDouble());
    }

    /// <summary>"943.52 M" → 943520000 (the profiler's SI formatting).</summary>
    public static double ParseSi(string text)
    {
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        double v = double.Parse(parts[0], CultureInfo.InvariantCulture);
        if (parts.Length < 2 || parts[1].Length == 0) return v;
        int power = "KMGTP".IndexOf(parts[1][0]) + 1;
        return power > 0 ? v * Math.Pow(1000, power) : v;
    }

    /// <summary>The result table: medians over rounds per config; with <paramref name="compare"/>, tokens/s ratios to the first config of the same round.</summary>
    public static string FormatTable(List<string> configs, List<RunResult> results, int ranks, bool compare, double? peakTflops)
    {
        var ci = CultureInfo.InvariantCulture;
        var header = new List<string> { "config", "tokens/s" };
        if (compare) header.Add("ratio");
        header.AddRange(["fwd ms", "bwd ms", "(inner", "allred.)", "step ms", "TFLOPS/rank"]);
        if (peakTflops != null) header.Add("MFU");
        header.AddRange(["peak RSS MiB/rank", "state MiB/rank", "sent MiB/step/rank", "final loss"]);
        var rows = new List<List<string>> { header };
        foreach (var (config, c) in configs.Select((x, i) => (x, i)))
        {
            var mine = results.Where(r => r.Config == config).ToList();
            double tps = Median(mine.Select(r => r.TokensPerSecond));
            double stepMs = Median(mine.Select(r => r.MedianStepMs));
            string T(string name) => mine.All(r => r.TimerMs.ContainsKey(name)) ? Median(mine.Select(r => r.TimerMs[name])).ToString("F1", ci) : "-";
            double tflops = 3 * Median(mine.Select(r => r.FwdFlopsPerRank)) / (stepMs / 1000) / 1e12;
            var row = new List<string> { Path.GetFileName(config), tps.ToString("F0", ci) };
            if (compare)
            {
                // Ratio to the first config measured in the same round, then the median over rounds.
                var ratios = mine.Select(r => r.TokensPerSecond / results.First(b => b.Round == r.Round && b.Config == configs[0]).TokensPerSecond);
                row.Add(c == 0 ? "1.00" : Median(ratios).ToString("F2", ci));
            }
            row.AddRange([T("forward"), T("backward"), T("backward_inner"), T("backward_allreduce"), T("step"), double.IsNaN(tflops) ? "-" : tflops.ToString("F4", ci)]);
            if (peakTflops is { } peak) row.Add(double.IsNaN(tflops) ? "-" : (100 * tflops / peak).ToString("F1", ci) + "%");
            var last = mine[^1];
            row.Add(string.Join("/", Enumerable.Range(0, ranks).Select(k => mine.Max(r => r.PeakRssMiB[k]).ToString(ci))));
            row.Add(string.Join("/", last.StateBytes.Select(b => (b / 1048576.0).ToString("F2", ci))));
            row.Add(string.Join("/", last.BytesSent.Select(b => (b / 1048576.0).ToString("F2", ci))));
            row.Add(last.FinalLoss.ToString("F4", ci));
            rows.Add(row);
        }
        var widths = Enumerable.Range(0, header.Count).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var r in rows) sb.AppendLine(string.Join("  ", r.Select((cell, i) => i == 0 ? cell.PadRight(widths[i]) : cell.PadLeft(widths[i]))));
        sb.Append(string.Create(ci, $"(medians over {results.Count / configs.Count} round(s); times per optimizer step on rank 0; peak RSS is the max over rounds; bytes from the last round; TFLOPS = 3 × profiled forward flops / median step)"));
        return sb.ToString();
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Where(x => !double.IsNaN(x)).Order().ToList();
        return v.Count == 0 ? double.NaN : v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    /// <summary>A TCP port free right now (so concurrent jobs on the machine do not collide on the default 29500).</summary>
    private static string FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port.ToString(CultureInfo.InvariantCulture);
    }

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));
}
