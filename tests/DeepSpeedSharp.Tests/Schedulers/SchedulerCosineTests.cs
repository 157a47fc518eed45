using DeepSpeedSharp.Schedulers;
using static DeepSpeedSharp.Tests.Schedulers.SchedulerTestUtil;

namespace DeepSpeedSharp.Tests.Schedulers;

public class SchedulerCosineTests
{
    private const int P = 12;

    [Fact]
    public void LinearWarmupThenCosineToMinRatio()
    {
        using var opt = Adam(lr: 0.1);
        var s = new WarmupCosineLR(opt, totalNumSteps: 20, warmupMinRatio: 0.1, warmupNumSteps: 10, cosMinRatio: 0.01,
            warmupType: "linear");
        Assert.Equal(0.0, Lr(opt));                          // iteration -1: DeepSpeed writes 0
        Assert.Equal(0.01, LrAt(s, 0), P);                   // 0.1 * (0.1 + 0.9 * 0/10)
        Assert.Equal(0.055, LrAt(s, 5), P);                  // 0.1 * (0.1 + 0.9 * 5/10)
        Assert.Equal(0.091, LrAt(s, 9), P);                  // 0.1 * (0.1 + 0.9 * 9/10)
        Assert.Equal(0.09757729755661011, LrAt(s, 10), P);   // p = 1/10: 0.1 * (0.01 + 0.99 * (1 + cos(0.1π))/2)
        Assert.Equal(0.0505, LrAt(s, 14), P);                // p = 5/10: 0.1 * (0.01 + 0.99 * 0.5)
        Assert.Equal(0.001, LrAt(s, 19), P);                 // p = 1: 0.1 * 0.01 (end)
        Assert.Equal(0.001, LrAt(s, 25), P);                 // clamped at p = 1
    }

    [Fact]
    public void LogWarmup()
    {
        using var opt = Adam(lr: 0.1);
        var s = new WarmupCosineLR(opt, totalNumSteps: 100, warmupMinRatio: 0.1, warmupNumSteps: 10);
        Assert.Equal(0.01, LrAt(s, 0), P);                 // 0.1 * (0.1 + 0.9 * ln(1)/ln(10))
        Assert.Equal(0.07290730039024168, LrAt(s, 4), P);  // 0.1 * (0.1 + 0.9 * ln(5)/ln(10))
        Assert.Equal(0.1, LrAt(s, 9), P);                  // 0.1 * (0.1 + 0.9 * 1)
        Assert.Equal(1.0, s.GetLrRatio(), P);
    }

    [Fact]
    public void ScalesEachGroupsOwnInitialLr()
    {
        var groups = new[]
        {
            new DeepSpeedSharp.Optim.FusedAdam.ParamGroup(new[] { new TorchSharp.Modules.Parameter(TorchSharp.torch.zeros(1)) }),
            new DeepSpeedSharp.Optim.FusedAdam.ParamGroup(new[] { new TorchSharp.Modules.Parameter(TorchSharp.torch.zeros(1)) },
                new DeepSpeedSharp.Optim.FusedAdam.Options { LearningRate = 0.02 }),
        };
        using var opt = new DeepSpeedSharp.Optim.FusedAdam(groups, lr: 0.1);
        var s = new WarmupCosineLR(opt, 20, warmupNumSteps: 10, warmupType: "linear");
        s.Step(5);
        Assert.Equal(new[] { 0.05, 0.01 }, s.GetLastLr().Select(x => Math.Round(x, 12)).ToArray()); // ratio 0.5
    }

    [Fact]
    public void WarnsWhenTotalBelowWarmupAndRejectsBadKeys()
    {
        using var opt = Adam();
        var s = new WarmupCosineLR(opt, totalNumSteps: 5, warmupNumSteps: 10);
        Assert.Contains("less than warmup_num_steps", Assert.Single(s.Warnings));
        Assert.Equal(0.0001 * 0.1, LrAt(s, 10), P); // no decay window: straight to cos_min_ratio
        Assert.Contains("warmup_type", Assert.Throws<ArgumentException>(() => new WarmupCosineLR(opt, 10, warmupType: "Log")).Message);
        Assert.Contains("cos_min_ratio", Assert.Throws<ArgumentException>(() => new WarmupCosineLR(opt, 10, cosMinRatio: -1)).Message);
    }
}
