using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 33, elastic restart: <c>dss launch --max_restarts 1</c> on a 2-host pdsh job (-R exec). A rank killed at step 5
/// (SIGKILL): the launcher stops the job, starts it again, the ranks resume from the step-4 checkpoint, the job finishes
/// with exit code 0, and every step after the restart equals an uninterrupted run's. A whole host lost (its node
/// launcher killed) with <c>--min_nodes 1</c>: the job restarts on the remaining host (the checkpoint resharded from
/// 2 ranks to 1, the config's <c>elasticity</c> section keeping the global batch of 8) and finishes. The time from the kill to training again is printed.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class ElasticRestartTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-elastic");

    public void Dispose() => _dir.Delete(recursive: true);

    private sealed record Line(string? Event, long Step, double Loss, int World, int Restart, long Ms, int Batch, int Micro);

    /// <summary>Runs the 2-host job; returns its exit code, its stderr and the loss log.</summary>
    private (int Code, string Error, List<Line> Log) Run(string name, params string[] extra)
    {
        var hosts = Path.Combine(_dir.FullName, "hosts");
        File.WriteAllText(hosts, "hostA slots=1\nhostB slots=1\n");
        var log = Path.Combine(_dir.FullName, name + ".jsonl");
        var save = Path.Combine(_dir.FullName, name + "-ckpt");
        string[] launch = extra.Contains("--local")
            ? ["launch", "--num_gpus", "2", "--master_port", RankProcesses.FreePort().ToString(), "--grace_period", "2"]
            : ["launch", "-H", hosts, "--launcher_args", "-R exec", "--master_addr", "127.0.0.1",
               "--master_port", RankProcesses.FreePort().ToString(), "--grace_period", "2"];
        extra = extra.Where(a => a != "--local").ToArray();
        string[] job = [DssProcess.Worker, "elastic-train", "--steps", "10", "--save-dir", save, "--save-every", "2", "--out", log];
        using var dss = new DssProcess(_dir.FullName, [.. launch, .. extra.TakeWhile(a => a != "--"), .. job, .. extra.SkipWhile(a => a != "--").Skip(1)]);
        int code = dss.WaitForExit(TimeSpan.FromSeconds(150));
        output.WriteLine($"--- {name}: exit {code}\n{dss.Error}");
        var lines = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement).Select(e => new Line(
            e.TryGetProperty("event", out var ev) ? ev.GetString() : null, e.GetProperty(e.TryGetProperty("step", out _) ? "step" : "ms").GetInt64(),
            e.TryGetProperty("loss", out var l) ? l.GetDouble() : double.NaN, e.TryGetProperty("world", out var w) ? w.GetInt32() : 0,
            e.TryGetProperty("restart", out var r) ? r.GetInt32() : 0, e.GetProperty("ms").GetInt64(),
            e.TryGetProperty("batch", out var b) ? b.GetInt32() : 0, e.TryGetProperty("micro", out var m) ? m.GetInt32() : 0)).ToList();
        return (code, dss.Error, lines);
    }

    private double SecondsToTrainingAgain(List<Line> log)
    {
        var kill = log.Single(l => l.Event == "kill");
        var again = log.First(l => l.Event == null && l.Restart == 1);
        double seconds = (again.Ms - kill.Ms) / 1000.0;
        output.WriteLine($"from the kill to the first step after the restart: {seconds:F1} s (checkpoint load included)");
        return seconds;
    }

    [PdshFact]
    public void AKilledRankRestartsTheJobWhichResumesExactlyAndFinishes()
    {
        var reference = Run("reference");
        Assert.True(reference.Code == 0, reference.Error);
        var elastic = Run("elastic", "--max_restarts", "1", "--", "--kill-at", "5", "--kill-rank", "1");
        Assert.True(elastic.Code == 0, elastic.Error);
        Assert.Contains("[dss launch] restart 1 of 1: the job failed (exit code 137 on host hostB); starting it again; ranks resume from their latest checkpoint (DSS_RESTART_COUNT=1).", elastic.Error);
        Assert.Contains("[dss launch] the job finished after 1 restart(s).", elastic.Error);

        var steps = reference.Log.Where(l => l.Event == null).ToDictionary(l => l.Step, l => l.Loss);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), steps.Keys.Order());
        var first = elastic.Log.Where(l => l.Event == null && l.Restart == 0).ToList();
        var after = elastic.Log.Where(l => l.Event == null && l.Restart == 1).ToList();
        Assert.Equal([1, 2, 3, 4, 5], first.Select(l => l.Step));
        Assert.Equal(4, elastic.Log.Single(l => l.Event == "resumed").Step);
        Assert.Equal([5, 6, 7, 8, 9, 10], after.Select(l => l.Step));
        foreach (var l in first.Concat(after)) Assert.Equal(steps[l.Step], l.Loss); // bit-identical, before and after the restart
        Assert.All(after, l => Assert.Equal(2, l.World));
        SecondsToTrainingAgain(elastic.Log);
    }

    /// <summary>The same on one host (no pdsh): the node launcher itself restarts its ranks.</summary>
    [Fact]
    public void ALocalJobRestartsToo()
    {
        var elastic = Run("local", "--local", "--max_restarts", "2", "--", "--kill-at", "3", "--kill-rank", "0");
        Assert.True(elastic.Code == 0, elastic.Error);
        Assert.Contains("[dss launch] restart 1 of 2: the job failed (exit code 137); starting it again; ranks resume from their latest checkpoint (DSS_RESTART_COUNT=1).", elastic.Error);
        Assert.Equal(2, elastic.Log.Single(l => l.Event == "resumed").Step);
        Assert.Equal([3, 4, 5, 6, 7, 8, 9, 10], elastic.Log.Where(l => l.Event == null && l.Restart == 1).Select(l => l.Step));
    }

    [PdshFact]
    public void ALostHostIsLeftOutWithMinNodesAndTheJobFinishesOnTheOther()
    {
        var elastic = Run("host-lost", "--max_restarts", "1", "--min_nodes", "1", "--", "--kill-at", "5", "--kill-rank", "1", "--kill-host", "--elastic");
        Assert.True(elastic.Code == 0, elastic.Error);
        Assert.Contains("starting it again without host(s) hostB, which were lost: 1 rank(s) on 1 host(s) {\"hostA\":[0]}; ranks resume from their latest checkpoint (DSS_RESTART_COUNT=1).", elastic.Error);
        var after = elastic.Log.Where(l => l.Event == null && l.Restart == 1).ToList();
        Assert.Equal(4, elastic.Log.Single(l => l.Event == "resumed").Step);
        Assert.Equal([5, 6, 7, 8, 9, 10], after.Select(l => l.Step));
        Assert.All(after, l => Assert.Equal(1, l.World));
        // The elasticity section keeps the global batch at 8: micro 4 × 1 accumulation × 2 ranks, then micro 4 × 2 × 1 rank.
        Assert.All(elastic.Log.Where(l => l.Event == null), l => Assert.Equal(8, l.Batch));
        Assert.All(elastic.Log.Where(l => l.Event == null), l => Assert.Equal(4, l.Micro));
        Assert.All(after, l => Assert.True(double.IsFinite(l.Loss)));
        SecondsToTrainingAgain(elastic.Log);
    }
}
