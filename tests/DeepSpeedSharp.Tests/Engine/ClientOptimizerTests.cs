using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.TestWorker.Scenarios;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Engine;

/// <summary>
/// Step 4 of the DeepSpeed guide under ZeRO: the user builds a TorchSharp optimizer over the model's parameters (two
/// param groups at different learning rates, weight decay on one) and a schedule over it, then initializes. The engine
/// carries the optimizer over to its partitions; on real processes (2 ranks, clipping on) the losses and norms equal an
/// independent plain TorchSharp loop with the same optimizer over the unsplit model within 1e-6 over 20 steps.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class ClientOptimizerTests(ITestOutputHelper output)
{
    private const int Steps = 20;

    [Theory]
    [InlineData("adamw", 1, false)]
    [InlineData("adamw", 2, false)]
    [InlineData("adamw", 3, false)]
    [InlineData("adamw", 2, true)]
    [InlineData("cpuadam", 3, true)]
    [InlineData("sgd", 1, false)]
    public void ClientOptimizerUnderZeroEqualsThePlainLoop(string kind, int stage, bool offload)
    {
        var reference = ClientOptimizerScenario.PlainReference(kind, Steps, dp: 2);
        var dir = Directory.CreateTempSubdirectory("dss-client-opt").FullName;
        try
        {
            var log = Path.Combine(dir, "steps.jsonl");
            var args = $"--stage {stage} --offload {(offload ? 1 : 0)} --optimizer {kind} --steps {Steps} --out {log}".Split(' ');
            var results = RankProcesses.Run("client-optimizer", 2, args, new RankOptions { Timeout = TimeSpan.FromSeconds(600) });
            foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
            var run = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement)
                .Select(e => (Loss: e.GetProperty("loss").GetDouble(), Norm: e.GetProperty("norm").GetDouble(),
                    Lr: e.GetProperty("lr").EnumerateArray().Select(x => x.GetDouble()).ToArray())).ToList();
            Assert.Equal(Steps, run.Count);
            double lossDiff = run.Zip(reference, (a, b) => Math.Abs(a.Loss - b.Loss)).Max();
            double normDiff = run.Zip(reference, (a, b) => Math.Abs(a.Norm - b.Norm) / b.Norm).Max();
            output.WriteLine($"{kind}, stage {stage}{(offload ? " + offload" : "")}: max loss difference {lossDiff:E2}, max relative norm difference {normDiff:E2}; " +
                             $"losses {reference[0].Loss:F5} → {reference[^1].Loss:F5}; lr at step 3 {string.Join(", ", run[2].Lr)}");
            Assert.True(lossDiff <= 1e-6, $"losses differ from the plain loop's by {lossDiff:E2}");
            Assert.True(normDiff <= 1e-6, $"norms differ from clip_grad_norm_'s by {normDiff:E2} (relative)");
            Assert.True(run[2].Lr[0] > run[2].Lr[1] * 1.5, "the two groups keep their own learning rates");
            Assert.True(reference[^1].Loss < reference[0].Loss);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The optimizer's two groups are checkpointed per flat range: a run resumed at step 10 continues bit for bit on
    /// the same layout, and within 1e-6 at another ZeRO stage (where each rank's partition meets the groups elsewhere).</summary>
    [Theory]
    [InlineData(2, 2)]
    [InlineData(2, 3)]
    public void ResumesWithTheClientsGroups(int savedStage, int resumedStage)
    {
        var dir = Directory.CreateTempSubdirectory("dss-client-opt-ckpt").FullName;
        try
        {
            string full = Path.Combine(dir, "full.jsonl"), resumed = Path.Combine(dir, "resumed.jsonl"), ckpt = Path.Combine(dir, "ckpt");
            ScenarioRuns.Run("client-optimizer", 2, $"--stage {savedStage} --offload 0 --optimizer adamw --steps {Steps} --out {full} --save-dir {ckpt} --save-at 10");
            ScenarioRuns.Run("client-optimizer", 2, $"--stage {resumedStage} --offload 0 --optimizer adamw --steps {Steps} --out {resumed} --load-dir {ckpt}");
            var a = ScenarioRuns.Losses(full).Skip(10).ToList();
            var b = ScenarioRuns.Losses(resumed);
            Assert.Equal(Steps - 10, b.Count);
            double diff = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
            output.WriteLine($"stage {savedStage} → {resumedStage}: steps 11–{Steps} differ from the uninterrupted run by at most {diff:E2}");
            if (savedStage == resumedStage) Assert.Equal(a, b);
            else Assert.True(diff <= 1e-6, $"resumed at stage {resumedStage}: {diff:E2}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
