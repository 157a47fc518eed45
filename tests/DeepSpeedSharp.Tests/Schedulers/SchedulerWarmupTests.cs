using DeepSpeedSharp.Schedulers;
using static DeepSpeedSharp.Tests.Schedulers.SchedulerTestUtil;

namespace DeepSpeedSharp.Tests.Schedulers;

public class SchedulerWarmupTests
{
    private const int P = 12; // decimal places compared

    [Fact]
    public void WarmupLRLogFollowsDeepSpeedFormula()
    {
        using var opt = Adam();
        var s = new WarmupLR(opt, warmupMinLr: 0, warmupMaxLr: 0.01, warmupNumSteps: 10, warmupType: "log");
        // Construction (iteration -1) writes min_lr for the first optimizer step.
        Assert.Equal(-1, s.LastBatchIteration);
        Assert.Equal(0.0, Lr(opt));
        Assert.Equal(new[] { 0.0 }, s.GetLastLr());
        Assert.Equal(0.0, LrAt(s, 0), P);                   // 0.01 * ln(1)/ln(10) = 0
        Assert.Equal(0.0030102999566398118, LrAt(s, 1), P); // 0.01 * ln(2)/ln(10)
        Assert.Equal(0.006989700043360187, LrAt(s, 4), P);  // 0.01 * ln(5)/ln(10) (mid warm-up)
        Assert.Equal(0.01, LrAt(s, 9), P);                  // 0.01 * ln(10)/ln(10) (end of warm-up)
        Assert.Equal(0.01, LrAt(s, 10), P);                 // gamma = 1 afterwards
        Assert.Equal(0.01, LrAt(s, 500), P);
    }

    [Fact]
    public void WarmupLRLinearFollowsDeepSpeedFormula()
    {
        using var opt = Adam();
        var s = new WarmupLR(opt, warmupMinLr: 0.001, warmupMaxLr: 0.01, warmupNumSteps: 10, warmupType: "linear");
        Assert.Equal(0.001, Lr(opt));
        Assert.Equal(0.001, LrAt(s, 0), P);  // 0.001 + 0.009 * 0/10
        Assert.Equal(0.0019, LrAt(s, 1), P); // 0.001 + 0.009 * 1/10
        Assert.Equal(0.0055, LrAt(s, 5), P); // 0.001 + 0.009 * 5/10
        Assert.Equal(0.0091, LrAt(s, 9), P); // 0.001 + 0.009 * 9/10
        Assert.Equal(0.01, LrAt(s, 10), P);
    }

    [Fact]
    public void WarmupLRMaxDefaultsToOptimizerLrAndStepsBelowTwoActAsTwo()
    {
        using var opt = Adam(lr: 0.05);
        var s = new WarmupLR(opt, warmupNumSteps: 1, warmupType: "linear");
        Assert.Equal(0.05, s.WarmupMaxLr);
        Assert.Equal(2, s.WarmupNumSteps);
        Assert.Equal(0.025, LrAt(s, 1), P); // 0.05 * 1/2
        Assert.Equal(0.05, LrAt(s, 2), P);
    }

    [Fact]
    public void WarmupLRDrivesEveryParamGroup()
    {
        using var opt = Adam(groups: 3);
        var s = new WarmupLR(opt, 0, 0.01, 10, "linear");
        s.Step(5);
        Assert.Equal(new[] { 0.005, 0.005, 0.005 }, opt.ParamGroups.Select(g => Math.Round(g.LearningRate, 12)).ToArray());
        Assert.Equal(3, s.GetLastLr().Length);
    }

    [Fact]
    public void WarmupDecayLRDecaysLinearlyToZero()
    {
        using var opt = Adam();
        var s = new WarmupDecayLR(opt, totalNumSteps: 30, warmupMinLr: 0, warmupMaxLr: 0.01, warmupNumSteps: 10, warmupType: "linear");
        Assert.Empty(s.Warnings);
        Assert.Equal(0.0, Lr(opt));
        Assert.Equal(0.0, LrAt(s, 0), P);
        Assert.Equal(0.005, LrAt(s, 5), P);   // warm-up: 0.01 * 5/10
        Assert.Equal(0.01, LrAt(s, 10), P);   // decay starts: (30 - 10) / max(1, 30 - 10) = 1
        Assert.Equal(0.005, LrAt(s, 20), P);  // (30 - 20) / 20 = 0.5 (mid-decay)
        Assert.Equal(0.0005, LrAt(s, 29), P); // (30 - 29) / 20 = 0.05
        Assert.Equal(0.0, LrAt(s, 30), P);    // end
        Assert.Equal(0.0, LrAt(s, 40), P);    // max(0, negative) = 0
    }

    [Fact]
    public void WarmupDecayLRLogWarmupAndDefaultMax()
    {
        using var opt = Adam(lr: 0.5);
        var s = new WarmupDecayLR(opt, totalNumSteps: 20, warmupNumSteps: 10);
        Assert.Equal(0.001, s.WarmupMaxLr); // DeepSpeed's WarmupDecayLR default, not the optimizer's lr
        Assert.Equal(0.0006989700043360187, LrAt(s, 4), P); // 0.001 * ln(5)/ln(10)
        Assert.Equal(0.0005, LrAt(s, 15), P);               // 0.001 * (20 - 15) / (20 - 10)
    }

    [Fact]
    public void WarmupDecayLRWarnsWhenTotalIsBelowWarmup()
    {
        using var opt = Adam();
        var s = new WarmupDecayLR(opt, totalNumSteps: 5, warmupNumSteps: 10);
        Assert.Contains("total_num_steps 5 is less than warmup_num_steps 10", Assert.Single(s.Warnings));
        // After warm-up: max(0, (5 - 10) / max(1, 5 - 10)) = 0.
        Assert.Equal(0.0, LrAt(s, 10), P);
    }

    [Fact]
    public void BadWarmupArgumentsNameTheKey()
    {
        using var opt = Adam();
        var e = Assert.Throws<ArgumentException>(() => new WarmupLR(opt, warmupType: "cos"));
        Assert.Contains("warmup_type must be 'log' or 'linear', got 'cos'", e.Message);
        Assert.Contains("warmup_num_steps", Assert.Throws<ArgumentException>(() => new WarmupLR(opt, warmupNumSteps: 0)).Message);
        Assert.Contains("total_num_steps", Assert.Throws<ArgumentException>(() => new WarmupDecayLR(opt, 0)).Message);
        Assert.Contains("warmup_max_lr", Assert.Throws<ArgumentException>(() => new WarmupLR(opt, 0, double.NaN)).Message);
    }

    [Fact]
    public void StateDictRoundTripsAndResumeDoesNotTouchTheOptimizer()
    {
        using var opt = Adam();
        var s = new WarmupLR(opt, 0, 0.01, 10, "linear");
        s.Step(); s.Step(); s.Step();
        var state = s.StateDict();
        Assert.Equal(new LrSchedulerState(2), state);
        Assert.Equal("{\"last_batch_iteration\":2}", System.Text.Json.JsonSerializer.Serialize(state));

        using var opt2 = Adam(lr: 0.7);
        var resumed = new WarmupLR(opt2, 0, 0.01, 10, "linear", lastBatchIteration: 2);
        Assert.Equal(0.7, Lr(opt2)); // resuming leaves the optimizer's lr alone, as DeepSpeed does
        Assert.Throws<InvalidOperationException>(() => resumed.GetLastLr());

        var fresh = new WarmupLR(opt2, 0, 0.01, 10, "linear");
        fresh.LoadStateDict(new Dictionary<string, object?> { ["last_batch_iteration"] = 2L });
        Assert.Equal(2, fresh.LastBatchIteration);
        fresh.Step();
        Assert.Equal(0.003, Lr(opt2), P); // iteration 3: 0.01 * 3/10
        Assert.Throws<ArgumentException>(() => fresh.LoadStateDict(new Dictionary<string, object?> { ["step"] = 1 }));
    }
}
