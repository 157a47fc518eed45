using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>
/// ZeRO++ on the sample GPT across two simulated hosts: `dss launch` with a hostfile of hostA and hostB (2 slots each),
/// started through pdsh's exec module, so each rank's host id comes from the launcher, as on a real cluster.
/// Reference: plain ZeRO-3 on the same 4 ranks.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public partial class ZeroPlusPlusGptTests : IDisposable
{
    private const int Steps = 100;
    private const string Model = "--vocab 64 --d-model 32 --layers 2 --heads 2 --seq 16";
    private readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("dss-zpp");

    public void Dispose() => dir.Delete(recursive: true);

    /// <summary>ZeRO-3 with every parameter partitioned, and gathered again in backward (no reuse, no prefetch).</summary>
    private static string Config(string zeroPlusPlus, bool bf16 = false) => $$"""
        { "train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "steps_per_print": 1000,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "bf16": { "enabled": {{(bf16 ? "true" : "false")}} },
          "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0, "stage3_max_reuse_distance": 0,
                                 "stage3_prefetch_bucket_size": 0 {{zeroPlusPlus}} } }
        """;

    private const string Hpz = """, "zero_hpz_partition_size": 2""";
    private const string All = """, "zero_hpz_partition_size": 2, "zero_quantized_weights": true, "zero_quantized_gradients": true""";

    [PdshFact]
    public void HpzMatchesZero3AndKeepsBackwardGathersInsideTheHost_QuantizedWeightsAndGradientsStayClose_AndResumeIsExact()
    {
        var z3 = Run("z3", Config(""), Steps);
        var hpz = Run("hpz", Config(Hpz), Steps);
        var all = Run("all", Config(All), Steps, "--save-every 50");

        // hpZ: the same losses as ZeRO-3 (the secondary partitions hold the very values the primary gather produced).
        Assert.Equal(Steps, hpz.Losses.Length);
        Assert.True(MaxDifference(z3, hpz) <= 1e-5, $"hpZ vs ZeRO-3: {MaxDifference(z3, hpz)}");
        Assert.Contains("ZeRO++: hpZ secondary groups of 2 ranks on one host", hpz.Output);
        // Backward's parameter all-gathers stay inside the host with hpZ; without it, 2 of 3 peers are across.
        Assert.True(z3.Backward("all_gather").CrossHost > 0, z3.TrafficLine);
        Assert.Equal(0, hpz.Backward("all_gather").CrossHost);
        Assert.True(hpz.Backward("all_gather").Sent > 0, hpz.TrafficLine);
        // Memory: primary + secondary partition. Every parameter is partitioned here (fp32): 1/4 of it over the 4 ranks,
        // plus 1/2 over the host's 2 ranks, so 3 × the primary partition (the sample's sizes divide evenly).
        Assert.Equal(3 * z3.ParameterBytes, hpz.ParameterBytes);
        var estimate = DeepSpeedSharp.Zero.ZeroMemoryEstimator.PerRank(DeepSpeedSharp.Zero.ZeroMemorySetup.FromConfig(
            DeepSpeedSharp.Config.DeepSpeedConfig.FromJson(Config(Hpz)), parameters: z3.ParameterBytes, largestParameter: 0, ranks: 2, nodes: 2));
        Assert.Equal(hpz.ParameterBytes, estimate.Parameters); // z3.ParameterBytes = 4 bytes × numel / 4 ranks = numel

        // qwZ + qgZ (with hpZ): close to ZeRO-3, and fewer bytes across hosts.
        Assert.True(MaxDifference(z3, all) <= 2e-2, $"qwZ+qgZ vs ZeRO-3: {MaxDifference(z3, all)}");
        Assert.Contains("int8 weight all-gather (qwZ); int8 hierarchical gradient reduce-scatter (qgZ)", all.Output);
        double weights = (double)hpz.Step("all_gather").CrossHost / all.Step("all_gather").CrossHost;
        double gradients = (double)z3.Step("reduce_scatter").CrossHost / all.Step("all_to_all").CrossHost;
        Assert.True(weights >= 3.0, $"int8 vs fp32 weights across hosts: {weights:F2}× ({hpz.TrafficLine} | {all.TrafficLine})");
        // Both send each chunk across once per host (the hierarchical reduce-scatter, qgZ's two hops): int8 vs fp32 less
        // the scales, block by block.
        Assert.True(gradients >= 3.5, $"int8 vs fp32 gradients across hosts: {gradients:F2}× ({z3.TrafficLine} | {all.TrafficLine})");
        Assert.DoesNotContain("reduce_scatter", all.TrafficLine);

        // Resume from step 50 reproduces steps 51-100 exactly: the secondary partitions are refilled, not saved.
        var resumed = Run("resume", Config(All), Steps, $"--resume {Path.Combine(all.Directory, "ckpt", "global_step50")}");
        Assert.Equal(all.Losses.Skip(50), resumed.Losses);
        Assert.Empty(Directory.GetFiles(Path.Combine(all.Directory, "ckpt"), "*secondary*", SearchOption.AllDirectories));

        // Reshard: the 4-rank checkpoint resumes on 2 ranks of one host (hpZ over both) and trains on.
        var two = SampleProcess.Run("Gpt.dll", 2, $"{Model} --steps 55 --deepspeed_config {Path.Combine(all.Directory, "ds.json")} --loss-log loss2.jsonl " +
                                    $"--resume {Path.Combine(all.Directory, "ckpt", "global_step50")}", all.Directory);
        Assert.True(two.ExitCode == 0, two.Stdout + two.Stderr);
        var twoLosses = File.ReadAllLines(Path.Combine(all.Directory, "loss2.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();
        Assert.Equal(5, twoLosses.Length);
        Assert.True(Math.Abs(twoLosses[0] - all.Losses[50]) < 0.05, $"step 51 on 2 ranks {twoLosses[0]} vs 4 ranks {all.Losses[50]}");
    }

    [PdshFact]
    public void QuantizedWeightsHalveTheCrossHostBytesOfBf16Weights()
    {
        var plain = Run("bf16", Config("", bf16: true), 3);
        var qwz = Run("bf16-qwz", Config(""", "zero_quantized_weights": true""", bf16: true), 3);
        double factor = (double)plain.Step("all_gather").CrossHost / qwz.Step("all_gather").CrossHost;
        Assert.True(factor >= 1.6, $"int8 vs bf16 weights across hosts: {factor:F2}× ({plain.TrafficLine} | {qwz.TrafficLine})");
    }

    /// <summary>
    /// Issue 29's drift goal: bf16 with hpZ + qwZ + qgZ ends within 1e-2 of fp32 ZeRO-3 (which follows PyTorch to ~5e-6)
    /// over 100 steps, on the sample's own shape (d 128). Quantizing the norm gains too reaches 1.0e-2–1.1e-2 here.
    /// </summary>
    [PdshFact]
    public void Bf16WithQuantizedWeightsAndGradientsStaysWithin1e2OfFp32()
    {
        var fp32 = Run("shape-fp32", Config(""), Steps, model: "");
        var quantized = Run("shape-bf16-all", Config(All, bf16: true), Steps, model: "");
        Assert.Equal(Steps, quantized.Losses.Length);
        Assert.True(MaxDifference(fp32, quantized) <= 1e-2, $"bf16 qwZ+qgZ vs fp32 ZeRO-3: {MaxDifference(fp32, quantized)}");
    }

    private static double MaxDifference(TwoHostRun a, TwoHostRun b) => a.Losses.Zip(b.Losses, (x, y) => Math.Abs(x - y)).Max();

    /// <summary>Trains the sample GPT (<paramref name="model"/>: shape flags; empty for the sample's own) on 2 hosts × 2 ranks; checkpoints go to DIR/ckpt when <paramref name="extra"/> asks.</summary>
    private TwoHostRun Run(string name, string configJson, int steps, string extra = "", string model = Model)
    {
        var runDir = Directory.CreateDirectory(Path.Combine(dir.FullName, name)).FullName;
        File.WriteAllText(Path.Combine(runDir, "ds.json"), configJson);
        File.WriteAllText(Path.Combine(runDir, "hosts"), "hostA slots=2\nhostB slots=2\n");
        if (extra.Contains("--save-every")) extra += $" --save-dir {Path.Combine(runDir, "ckpt")}";
        var (code, stdout, stderr) = SampleProcess.Launch($"-H hosts --launcher_args \"-R exec\" --master_addr 127.0.0.1 --master_port {RankProcesses.FreePort()}",
            "Gpt.dll", $"{model} --steps {steps} --deepspeed_config ds.json --loss-log loss.jsonl {extra}", runDir);
        string output = stdout + stderr;
        Assert.True(code == 0, $"{name} exited with {code}:\n{output}");
        var traffic = TrafficLine().Match(output);
        Assert.True(traffic.Success, $"no traffic line:\n{output}");
        var state = StateLine().Match(output);
        long L(Group g) => long.Parse(g.Value, CultureInfo.InvariantCulture);
        return new TwoHostRun
        {
            Directory = runDir,
            Output = output,
            TrafficLine = traffic.Value,
            Losses = File.ReadAllLines(Path.Combine(runDir, "loss.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray(),
            ParameterBytes = L(state.Groups[1]),
            Ops = OpTraffic().Matches(traffic.Value).ToDictionary(m => m.Groups[1].Value,
                m => (Step: (L(m.Groups[2]), L(m.Groups[3])), Backward: (L(m.Groups[4]), L(m.Groups[5])))),
        };
    }

    private sealed class TwoHostRun
    {
        public required string Directory { get; init; }
        public required string Output { get; init; }
        public required string TrafficLine { get; init; }
        public required double[] Losses { get; init; }
        public required long ParameterBytes { get; init; }
        public required Dictionary<string, ((long Sent, long CrossHost) Step, (long Sent, long CrossHost) Backward)> Ops { get; init; }

        public (long Sent, long CrossHost) Step(string op) => Ops.TryGetValue(op, out var t) ? t.Step : (0, 0);
        public (long Sent, long CrossHost) Backward(string op) => Ops.TryGetValue(op, out var t) ? t.Backward : (0, 0);
    }

    [GeneratedRegex(@"traffic of the last step on rank 0: [^\n]*")]
    private static partial Regex TrafficLine();

    [GeneratedRegex(@"(\w+) (\d+) \((\d+) to other hosts\), in backward (\d+) \((\d+) to other hosts\)")]
    private static partial Regex OpTraffic();

    [GeneratedRegex(@"model state bytes on rank 0: parameters (\d+)")]
    private static partial Regex StateLine();
}
