using DeepSpeedSharp.Launcher;
using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>Runs the sample GPT (alone or under `dss launch`) with checkpoint options; returns exit code, output and losses by step.</summary>
internal sealed record CheckpointRun(int ExitCode, string Output, Dictionary<int, double> Losses)
{
    public static string Config(int stage, string precision = "") => $$"""
        { {{precision}} "train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "steps_per_print": 100,
          "optimizer": { "type": "AdamW", "params": { "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.002, "warmup_num_steps": 5 } },
          "zero_optimization": { "stage": {{stage}}, "reduce_bucket_size": 5000, "allgather_bucket_size": 7000,
                                 "stage3_param_persistence_threshold": 100 } }
        """;

    /// <summary>Trains until <paramref name="steps"/> on <paramref name="ranks"/> ranks; extra args e.g. --save-dir, --resume.</summary>
    public static CheckpointRun Start(int ranks, int stage, int steps, string extraArgs, IDictionary<string, string>? env = null, bool expectSuccess = true, double dropout = 0.1, string precision = "")
    {
        var dir = Directory.CreateTempSubdirectory("dss-ckrun").FullName;
        var config = Path.Combine(dir, "ds.json");
        File.WriteAllText(config, Config(stage, precision));
        var log = Path.Combine(dir, "loss.jsonl");
        var bin = AppContext.BaseDirectory;
        string gpt = $"{Path.Combine(bin, "Gpt.dll")} {GptRun.SmallModel} --dropout {dropout.ToString(System.Globalization.CultureInfo.InvariantCulture)} --steps {steps} --deepspeed_config {config} --loss-log {log} {extraArgs}";
        string args = ranks == 1 ? gpt : $"{Path.Combine(bin, "dss.dll")} launch --num_gpus {ranks} --master_port {RankProcesses.FreePort()} {gpt}";
        var run = ChildProcess.Dotnet(ShellWords.Split(args), dir, env?.ToDictionary(kv => kv.Key, kv => (string?)kv.Value), TimeSpan.FromSeconds(120));
        if (run.TimedOut) Assert.Fail($"run on {ranks} rank(s) did not finish in 120 s:\n{run.Stdout}");
        string output = run.Output;
        if (expectSuccess) Assert.True(run.ExitCode == 0, $"run on {ranks} rank(s), stage {stage} ({extraArgs}) exited with {run.ExitCode}:\n{output}");
        var losses = File.Exists(log)
            ? File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement)
                .ToDictionary(e => e.GetProperty("step").GetInt32(), e => e.GetProperty("loss").GetDouble())
            : new Dictionary<int, double>();
        return new CheckpointRun(run.ExitCode, output, losses);
    }

    /// <summary>Largest difference of the losses of steps <paramref name="from"/>..<paramref name="to"/>.</summary>
    public static double MaxDifference(CheckpointRun a, CheckpointRun b, int from, int to) =>
        Enumerable.Range(from, to - from + 1).Max(s =>
        {
            Assert.True(a.Losses.ContainsKey(s) && b.Losses.ContainsKey(s), $"step {s} missing: {string.Join(",", a.Losses.Keys)} / {string.Join(",", b.Losses.Keys)}");
            return Math.Abs(a.Losses[s] - b.Losses[s]);
        });
}
