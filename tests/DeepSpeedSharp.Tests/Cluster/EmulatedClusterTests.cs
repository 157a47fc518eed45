using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Tests.Config;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Cluster;

/// <summary>
/// Issue 31's CI tier: the GPT sample on benchmarks/cluster's emulated hosts (2 network namespaces × 2 ranks, each host
/// with its own address and /dev/shm, joined by 1 Gbit/s links), so ranks on different hosts talk over a real TCP link
/// and the kernel counts its bytes. Reference: the same 4 ranks on one host (shared memory).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed partial class EmulatedClusterTests : IDisposable
{
    private const int Steps = 20;
    private const string Model = "--vocab 512 --d-model 128 --layers 4 --heads 4 --seq 64";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-cluster");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>ZeRO-3 with every parameter partitioned and gathered again in backward; 2 micro-steps per step.</summary>
    private static string Config(string extra) => $$"""
        { "train_batch_size": 16, "train_micro_batch_size_per_gpu": 2, "steps_per_print": 1000,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0, "stage3_max_reuse_distance": 0,
                                 "stage3_prefetch_bucket_size": 0 {{extra}} } }
        """;

    [ClusterFact]
    public void Zero3AndHpzAcrossEmulatedHostsMatchOneHost_TheLinksCarryWhatTheEngineCounts_AndHpzCrossesLess()
    {
        var oneHost = OneHost();
        var z3 = OnCluster("z3", Config(""));
        var hpz = OnCluster("hpz", Config(""", "zero_hpz_partition_size": 2"""));

        foreach (var run in new[] { z3, hpz })
        {
            Assert.Contains("backend=hierarchical", run.Output);
            Assert.Equal(Steps, run.Losses.Length);
            double diff = run.Losses.Zip(oneHost, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(diff <= 1e-6, $"{run.Name} on 2 emulated hosts vs one host: {diff}");
            // The kernel's count of what each host's link sent agrees with the engine's bytes to other hosts (its ranks' sum).
            foreach (var (host, engine) in run.EngineCrossHost)
            {
                double ratio = (double)run.LinkSent[host] / engine;
                Assert.True(Math.Abs(ratio - 1) <= 0.05, $"{run.Name}, {host}: link sent {run.LinkSent[host]} bytes, engine counted {engine} ({ratio:F4})");
            }
        }
        Assert.Contains("ZeRO++: hpZ secondary groups of 2 ranks on one host", hpz.Output);
        double linkRatio = (double)hpz.LinkSent.Values.Sum() / z3.LinkSent.Values.Sum();
        Assert.True(linkRatio <= 2.0 / 3, $"hpZ's bytes on the links are {linkRatio:F3} of ZeRO-3's (goal ≤ 2/3)");
    }

    private double[] OneHost()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "one-host")).FullName;
        File.WriteAllText(Path.Combine(dir, "ds.json"), Config(""));
        var (code, stdout, stderr) = SampleProcess.Run("Gpt.dll", 4, $"{Model} --steps {Steps} --deepspeed_config ds.json --loss-log loss.jsonl", dir);
        Assert.True(code == 0, $"one host exited with {code}:\n{stdout}{stderr}");
        return Losses(dir);
    }

    private ClusterRun OnCluster(string name, string config)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir.FullName, name)).FullName;
        File.WriteAllText(Path.Combine(dir, "ds.json"), config);
        string bin = AppContext.BaseDirectory, counters = Path.Combine(dir, "links.json");
        var script = Path.Combine(ConfigTestHelpers.RepoRoot()!, "benchmarks", "cluster", "cluster.sh");
        var run = ChildProcess.Run("bash", [script, "run", "--hosts", "2", "--slots", "2", "--hostfile", Path.Combine(dir, "hostfile"),
                "--dss", $"dotnet {Path.Combine(bin, "dss.dll")}", "--counters", counters, "--",
                "--master_port", RankProcesses.FreePort().ToString(CultureInfo.InvariantCulture), Path.Combine(bin, "Gpt.dll"),
                .. Model.Split(' '), "--steps", $"{Steps}", "--deepspeed_config", "ds.json", "--loss-log", "loss.jsonl"],
            dir, new Dictionary<string, string?> { ["OMP_NUM_THREADS"] = "1" }, TimeSpan.FromSeconds(180));
        string output = run.Stdout + run.Stderr;
        Assert.True(run.ExitCode == 0 && !run.TimedOut, $"{name} on the emulated cluster exited with {run.ExitCode}:\n{output}");
        var links = JsonDocument.Parse(File.ReadAllText(counters)).RootElement;
        var sent = links.GetProperty("after").EnumerateObject().ToDictionary(h => h.Name,
            h => h.Value.GetProperty("sent").GetInt64() - links.GetProperty("before").GetProperty(h.Name).GetProperty("sent").GetInt64());
        var engine = SummaryLine().Matches(output).GroupBy(m => m.Groups[1].Value)
            .ToDictionary(g => g.Key, g => g.Sum(m => JsonDocument.Parse(m.Groups[2].Value).RootElement.GetProperty("bytes_sent_cross_host").GetInt64()));
        Assert.Equal(["dssc-h0", "dssc-h1"], engine.Keys.Order());
        return new ClusterRun(name, output, Losses(dir), sent, engine);
    }

    private static double[] Losses(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "loss.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();

    private sealed record ClusterRun(string Name, string Output, double[] Losses, Dictionary<string, long> LinkSent, Dictionary<string, long> EngineCrossHost);

    /// <summary>A rank's machine summary as pdsh prints it: "HOST: [rank N] gpt: summary {...}".</summary>
    [GeneratedRegex(@"^(\S+): \[rank \d+\] gpt: summary (\{.*\})\s*$", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}
