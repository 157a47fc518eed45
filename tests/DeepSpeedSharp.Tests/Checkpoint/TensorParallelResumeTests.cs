using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// Issue 32, first slice: a checkpoint resumes at another tensor-parallel size (and, for a PipelineModule, another
/// pipeline size at the same time). <c>WideToy</c> (tensor-parallel
/// embedding, column/row-parallel blocks and head) trains 20 steps in one layout, saving after step 10; a second job in
/// another layout loads that checkpoint — each parameter and its AdamW moments reassembled from the saved slices and cut
/// anew — and trains steps 11–20 on the same global batches. Its losses must follow the uninterrupted run's.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class TensorParallelResumeTests(ITestOutputHelper output)
{
    private const int Steps = 20, SaveAt = 10;

    [Theory]
    [InlineData("--tp 2 --stage 1", 2, "--tp 1 --stage 1 --gas 1", 2)] // tensor 2 → data 2 (the same four samples a step)
    [InlineData("--tp 2 --stage 1", 2, "--tp 4 --stage 0", 4)]
    [InlineData("--tp 1 --stage 2 --gas 1", 2, "--tp 2 --stage 3", 2)]
    [InlineData("--pp 2 --tp 2 --stage 0", 4, "--pp 2 --stage 1", 2)] // a PipelineModule: layer-named, so the stages may change too
    [InlineData("--pp 2 --tp 2 --stage 1", 4, "--pp 4 --stage 0", 4)]
    [InlineData("--pp 2 --stage 1", 2, "--pp 2 --tp 2 --stage 1", 4)]
    public void ResumesAtAnotherTensorParallelSize(string saved, int savedRanks, string resumed, int resumedRanks)
    {
        var dir = Directory.CreateTempSubdirectory("dss-tp-resume").FullName;
        try
        {
            string full = Path.Combine(dir, "full.jsonl"), rest = Path.Combine(dir, "rest.jsonl"), ckpt = Path.Combine(dir, "ckpt");
            ScenarioRuns.Run("wide-toy", savedRanks, $"{saved} --steps {Steps} --clip 1.0 --lr 5e-4 --out {full} --save-dir {ckpt} --save-at {SaveAt}");
            ScenarioRuns.Run("wide-toy", resumedRanks, $"{resumed} --steps {Steps} --clip 1.0 --lr 5e-4 --out {rest} --load-dir {ckpt}");
            var a = ScenarioRuns.Losses(full).Skip(SaveAt).ToList();
            var b = ScenarioRuns.Losses(rest);
            Assert.Equal(Steps - SaveAt, b.Count);
            double diff = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
            output.WriteLine($"{saved} → {resumed}: steps {SaveAt + 1}–{Steps} within {diff:E2} of the uninterrupted run (losses {a[0]:F5} → {a[^1]:F5})");
            Assert.True(diff <= 1e-6, $"resumed at another layout, the losses differ by {diff:E2}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
