using DeepSpeedSharp.Engine;

namespace DeepSpeedSharp.Tests.Engine;

/// <summary>Issue 34: the progress line says what its loss is the mean of (micro-steps, or a pipeline's batches).</summary>
[Collection(Infrastructure.GlobalRngCollection.Name)] // it reads the console, which other tests of this collection leave alone
public class ProgressLineTests
{
    [Theory]
    [InlineData(null, "loss=3.000000 (this rank, mean of 2 micro-step(s))")]
    [InlineData("batch(es)", "loss=3.000000 (this rank, mean of 2 batch(es))")]
    public void TheLossSaysWhatItIsTheMeanOf(string? unit, string expected)
    {
        var progress = new ProgressReporter(stepsPerPrint: 1, wallClockBreakdown: false);
        if (unit != null) progress.LossUnit = unit;
        progress.RecordLoss(2.0);
        progress.RecordLoss(4.0);
        var before = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        try { progress.AfterStep(1, 0, 8, [0.1], new WallClockTimers()); }
        finally { Console.SetOut(before); }
        Assert.Contains(expected, captured.ToString());
    }
}
