using System.Diagnostics;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Cli.Commands;

using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Monitoring;

[Trait("Tier", "Full")]
public class BenchTrainTests
{
    private static string SampleConfig(string dir, int stage)
    {
        var path = Path.Combine(dir, $"zero{stage}.json");
        File.WriteAllText(path, """{"train_micro_batch_size_per_gpu": 4, "steps_per_print": 50, "zero_optimization": {"stage": """ + stage + "}}");
        return path;
    }

    [Fact]
    public void DerivedConfigKeepsTheUsersKeysAndAddsWhatTheBenchReads()
    {
        var dir = Directory.CreateTempSubdirectory("dss-bench").FullName;
        var derived = JsonNode.Parse(File.ReadAllText(BenchTrainCommand.DerivedConfig(SampleConfig(dir, 2), dir, profileStep: 1)))!;
        Assert.Equal(2, derived["zero_optimization"]!["stage"]!.GetValue<int>());
        Assert.Equal(4, derived["train_micro_batch_size_per_gpu"]!.GetValue<int>());
        Assert.True(derived["wall_clock_breakdown"]!.GetValue<bool>());
        Assert.Equal(1, derived["steps_per_print"]!.GetValue<int>());
        Assert.Equal(dir, derived["csv_monitor"]!["output_path"]!.GetValue<string>());
        Assert.True(derived["flops_profiler"]!["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public void ParsesSummariesTimersAndFlopsThenTabulatesRatiosPerRound()
    {
        var dir = Directory.CreateTempSubdirectory("dss-bench").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "bench"));
        // 2 warm-up rows skipped, then forward times 1, 5, 3 ms: median 3.
        File.WriteAllLines(Path.Combine(dir, "bench", "Train_Samples_elapsed_time_ms_forward.csv"), ["step,elapsed_time_ms_forward", "8,100", "16,90", "24,1", "32,5", "40,3"]);
        File.WriteAllLines(Path.Combine(dir, "flops.txt"), ["fwd flops per rank:                 1.5 G"]);
        string Summary(int rank, double tps, long rss) =>
            $$"""[rank {{rank}}] gpt: summary {"rank":{{rank}},"tokens_per_s":{{tps}},"median_step_ms":100,"peak_rss_mib":{{rss}},"parameter_bytes":1048576,"gradient_bytes":1048576,"optimizer_state_bytes":2097152,"bytes_sent_last_step":524288,"final_loss":2.5}""";
        string output = string.Join('\n', "noise", Summary(1, 900, 210), Summary(0, 1000, 200));
        var a = BenchTrainCommand.Parse("a.json", 1, output, dir, ranks: 2, warmup: 2);
        Assert.Equal(1000, a.TokensPerSecond);
        Assert.Equal(3, a.TimerMs["forward"]);
        Assert.Equal(1.5e9, a.FwdFlopsPerRank);
        Assert.Equal(new long[] { 200, 210 }, a.PeakRssMiB);
        Assert.Equal(new long[] { 4 << 20, 4 << 20 }, a.StateBytes);
        Assert.Throws<InvalidDataException>(() => BenchTrainCommand.Parse("a.json", 1, Summary(0, 1, 1), dir, ranks: 2, warmup: 2));

        // Round 1: b is 2× a; round 2 (machine slower overall): b is 1.5× a → median ratio 1.75, whatever the absolute speeds.
        var results = new List<BenchTrainCommand.RunResult>
        {
            a, a with { Config = "b.json", TokensPerSecond = 2000 },
            a with { Round = 2, TokensPerSecond = 500 }, a with { Config = "b.json", Round = 2, TokensPerSecond = 750 },
        };
        var table = BenchTrainCommand.FormatTable(["a.json", "b.json"], results, 2, compare: true, peakTflops: 1.0).Split('\n');
        Assert.Contains("ratio", table[0]);
        Assert.Contains(" 1.75 ", table[2]);
        // TFLOPS/rank = 3 · 1.5 GFLOP / 0.1 s = 0.045 TFLOPS → 4.5% of a 1 TFLOPS peak.
        Assert.Contains("0.0450", table[1]);
        Assert.Contains("4.5%", table[1]);
        Assert.Contains("200/210", table[1]);
    }

    [Fact]
    public async Task BenchTrainRunsTheSampleUnderTwoRanksAndPrintsTheTable()
    {
        var dir = Directory.CreateTempSubdirectory("dss-bench").FullName;
        var bin = AppContext.BaseDirectory;
        var run = ChildProcess.Run("dotnet", [Path.Combine(bin, "dss.dll"), "bench", "train", "--ranks", "2", "--steps", "5", "--warmup", "2", "--compare", "--rounds", "1",
                     "--model", Infrastructure.GptRun.SmallModel, "--gpt", Path.Combine(bin, "Gpt.dll"), SampleConfig(dir, 0), SampleConfig(dir, 2)], dir,
            timeout: TimeSpan.FromSeconds(180));
        Assert.False(run.TimedOut, "dss bench train did not finish in 180 s");
        string output = run.Stdout;
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}:\n{output}\n{run.Stderr}");
        var lines = output.Split('\n');
        var header = Array.FindIndex(lines, l => l.StartsWith("config ", StringComparison.Ordinal));
        Assert.True(header >= 0, output);
        Assert.StartsWith("zero0.json", lines[header + 1]);
        Assert.StartsWith("zero2.json", lines[header + 2]);
        // ZeRO-2 keeps half the gradients and optimizer state per rank: its state MiB column is smaller; the losses agree.
        string[] Cells(string l) => l.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var z0 = Cells(lines[header + 1]);
        var z2 = Cells(lines[header + 2]);
        double State(string[] c) => double.Parse(c[^3].Split('/')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(State(z2) < State(z0), $"{lines[header + 1]}\n{lines[header + 2]}");
        Assert.Equal(z0[^1], z2[^1]);
        Assert.Equal("1.00", z0[2]);
    }
}
