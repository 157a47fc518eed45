using System.Text.Json;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.TestWorker.Scenarios;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Weights;

/// <summary>
/// Whole-model weights across layouts on real processes, with <see cref="WideToy"/>: a file written by plain TorchSharp
/// (not the engine's seeds) starts tp 1 and tp 2 runs that follow the plain loop from the same file; weights saved at
/// tp 2 and at pp 2 × tp 2 are whole tensors under the unsplit model's names, and load at tp 1 and tp 4 to the loss the
/// saving run computes on the next batch.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed class WholeModelWeightsRankTests(ITestOutputHelper output) : IDisposable
{
    private const int Gas = 2, Mb = 2;
    private const double Clip = 1.0, Lr = 5e-4;
    private readonly string dir = Directory.CreateTempSubdirectory("dss-whole").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>The unsplit model's weights moved off the seeds' values, written by <see cref="ModuleWeights"/>.</summary>
    private string ExternalFile()
    {
        string path = Path.Combine(dir, "external.safetensors");
        using var scope = NewDisposeScope();
        using var model = WideToy.Model(null, false);
        var g = new Generator(77);
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn(p.shape, generator: g) * 0.02);
        ModuleWeights.Save(model, path);
        return path;
    }

    private List<JsonElement> Run(string name, int ranks, string args)
    {
        var log = Path.Combine(dir, $"{name}.jsonl");
        var all = $"{args} --gas {Gas} --mb {Mb} --clip {Clip} --lr {Lr} --out {log}".Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var results = RankProcesses.Run("wide-toy", ranks, all, new RankOptions { Timeout = TimeSpan.FromSeconds(300) });
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        return File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement).ToList();
    }

    private static double[] Losses(List<JsonElement> lines) => lines.Where(l => l.TryGetProperty("loss", out _)).Select(l => l.GetProperty("loss").GetDouble()).ToArray();

    private static double Eval(List<JsonElement> lines) => lines.Single(l => l.TryGetProperty("eval", out _)).GetProperty("eval").GetDouble();

    [Fact]
    public void TensorTwoFromAWholeModelFileFollowsThePlainLoopAndTensorOne()
    {
        const int steps = 50;
        var file = ExternalFile();
        var reference = WideToy.PlainReference(steps, 1, Gas, Mb, Clip, Lr, file).Select(r => r.Loss).ToArray();
        var seeded = WideToy.PlainReference(1, 1, Gas, Mb, Clip, Lr)[0].Loss;
        Assert.True(Math.Abs(seeded - reference[0]) > 1e-3, $"the file's weights must differ from the seeds' ({seeded} vs {reference[0]})");
        var one = Losses(Run("tp1", 1, $"--tp 1 --steps {steps} --init-weights {file}"));
        var two = Losses(Run("tp2", 2, $"--tp 2 --stage 1 --steps {steps} --init-weights {file}"));
        double oneDiff = one.Zip(reference, (a, b) => Math.Abs(a - b)).Max(), twoDiff = two.Zip(one, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"from a whole-model file, {steps} steps: tp 1 vs the plain loop {oneDiff:E2}, tp 2 vs tp 1 {twoDiff:E2}; loss {one[0]:F5} → {one[^1]:F5}");
        Assert.Equal(steps, two.Length);
        Assert.True(oneDiff <= 1e-5, $"tp 1 from the file vs the plain loop: {oneDiff:E2}");
        Assert.True(twoDiff <= 1e-5, $"tp 2 from the file vs tp 1: {twoDiff:E2}");
    }

    [Theory]
    [InlineData("tp2", 2, "--tp 2 --stage 1")]
    [InlineData("pp2-tp2", 4, "--pp 2 --tp 2")]
    public void WeightsSavedSplitLoadWholeAtTensorOneAndFour(string layout, int ranks, string split)
    {
        const int steps = 5;
        var file = ExternalFile();
        var saved = Path.Combine(dir, $"{layout}.safetensors");
        double expected = Eval(Run(layout, ranks, $"{split} --steps {steps} --init-weights {file} --save-weights {saved} --eval 1"));

        // The file holds the unsplit model's tensors, each once, whole.
        using (var reader = new SafeTensorsReader(file))
        using (var written = new SafeTensorsReader(saved))
        {
            Assert.Equal(reader.Entries.Keys.Order(), written.Entries.Keys.Order());
            foreach (var (name, e) in reader.Entries) Assert.Equal(e.Shape, written.Entries[name].Shape);
        }
        double one = Eval(Run($"{layout}-tp1", 1, $"--tp 1 --steps 0 --init-weights {saved} --eval 1 --eval-step {steps}"));
        double four = Eval(Run($"{layout}-tp4", 4, $"--tp 4 --steps 0 --init-weights {saved} --eval 1 --eval-step {steps}"));
        output.WriteLine($"saved at {layout} after {steps} steps: next-batch loss {expected:R}; loaded at tp 1 {one:R} ({Math.Abs(one - expected):E2}), tp 4 {four:R} ({Math.Abs(four - expected):E2})");
        Assert.True(Math.Abs(one - expected) <= 1e-6, $"tp 1 from {layout}'s file: {one} vs {expected}");
        Assert.True(Math.Abs(four - expected) <= 1e-6, $"tp 4 from {layout}'s file: {four} vs {expected}");
    }
}
