using DeepSpeedSharp.Schedulers;
using TorchSharp;
using static DeepSpeedSharp.Tests.Schedulers.SchedulerTestUtil;

namespace DeepSpeedSharp.Tests.Schedulers;

public class SchedulerOneCycleTests
{
    private const int P = 12;

    private static (double, double) Betas(torch.optim.Optimizer opt) => ((torch.optim.IBetas)opt.ParamGroups.First()).Betas;

    [Fact]
    public void CyclesLrAndBeta1ThenDecays()
    {
        using var opt = Adam();
        // first step 4, second 6: T = 10, step ratio r = 0.4
        var s = new OneCycle(opt, cycleMinLr: 0.01, cycleMaxLr: 0.1, decayLrRate: 0.5, cycleFirstStepSize: 4,
            cycleSecondStepSize: 6, decayStepSize: 2, cycleMinMom: 0.85, cycleMaxMom: 0.95, decayMomRate: 0.01);
        Assert.True(s.CycleMomentum);
        Assert.Equal(0.01, Lr(opt));
        Assert.Equal((0.85, 0.99), Betas(opt)); // DeepSpeed writes (cycle_min_mom, 0.99) at construction
        Assert.Throws<InvalidOperationException>(() => s.GetLastLr());

        Assert.Equal(0.0325, LrAt(s, 0), P);              // b=1: x=0.1, scale 0.1/0.4 = 0.25: 0.01 + 0.09*0.25
        Assert.Equal(0.925, Betas(opt).Item1, P);         // 0.95 - 0.1*0.25
        Assert.Equal(0.1, LrAt(s, 3), P);                 // b=4: x=0.4, scale 1 (peak)
        Assert.Equal(0.85, Betas(opt).Item1, P);
        Assert.Equal(0.08499999999999999, LrAt(s, 4), P); // b=5: x=0.5, scale (0.5-1)/(0.4-1) = 5/6
        Assert.Equal(0.8666666666666666, Betas(opt).Item1, P);
        Assert.Equal(0.025, LrAt(s, 8), P);               // b=9: scale (0.9-1)/(0.4-1) = 1/6
        Assert.Equal(0.9333333333333332, Betas(opt).Item1, P);
        Assert.Equal(0.01, LrAt(s, 9), P);                // b=10: new cycle, x=0, scale 0 (end of cycle)
        Assert.Equal(0.95, Betas(opt).Item1, P);
        Assert.Equal(0.008, LrAt(s, 10), P);              // decay d=1: 0.01 / (1 + 0.5 * 1/2)
        Assert.Equal(0.95475, Betas(opt).Item1, P);       // 0.95 * (1 + 0.01 * 1/2)
        Assert.Equal(0.005, LrAt(s, 13), P);              // d=4: 0.01 / (1 + 0.5 * 4/2)
        Assert.Equal(0.969, Betas(opt).Item1, P);         // 0.95 * (1 + 0.01 * 4/2)
        Assert.Equal(0.99, Betas(opt).Item2);
    }

    [Fact]
    public void WithoutDecayLrStaysAtMinAfterTheCycle()
    {
        using var opt = Adam();
        var s = new OneCycle(opt, 0.01, 0.1, decayLrRate: 0.5, cycleFirstStepSize: 2); // decay_step_size 0: no decay
        Assert.Equal(0.01, LrAt(s, 3), P);  // b=4, T=4: x=0, scale 0
        Assert.Equal(0.01, LrAt(s, 50), P);
        Assert.Equal(0.9, Betas(opt).Item1, P); // max_mom after the cycle
    }

    [Fact]
    public void StairCountsQuantiseTheCycle()
    {
        using var opt = Adam();
        // T = 8, 2 stairs per half (second count defaults to the first)
        var s = new OneCycle(opt, 0.01, 0.1, cycleFirstStepSize: 4, cycleFirstStairCount: 2, cycleMomentum: false);
        Assert.Equal(0.01, LrAt(s, 0), P);  // b=1: floor(1*2/4)/2 = 0
        Assert.Equal(0.055, LrAt(s, 1), P); // b=2: floor(2*2/4)/2 = 0.5: 0.01 + 0.09*0.5
        Assert.Equal(0.055, LrAt(s, 2), P); // b=3: floor(1.5)/2 = 0.5 (flat stair)
        Assert.Equal(0.1, LrAt(s, 3), P);   // b=4: floor(2)/2 = 1 (peak)
        Assert.Equal(0.055, LrAt(s, 4), P); // b=5: floor((8-5)*2/4)/2 = 0.5
        Assert.Equal(0.01, LrAt(s, 6), P);  // b=7: floor((8-7)*2/4)/2 = 0
    }

    [Fact]
    public void OptimizerWithoutBetasDisablesMomentumCyclingWithWarning()
    {
        using var opt = Sgd();
        var s = new OneCycle(opt, 0.01, 0.1, cycleFirstStepSize: 4);
        Assert.False(s.CycleMomentum);
        Assert.Contains("cycle_momentum is disabled", Assert.Single(s.Warnings));
        Assert.Null(s.GetMom());
        Assert.Equal(0.1, LrAt(s, 3), P);
        Assert.Equal(0.9, ((torch.optim.IMomentum)opt).Momentum); // SGD's momentum untouched
    }

    [Fact]
    public void BadArgumentsNameTheKey()
    {
        using var opt = Adam();
        Assert.Contains("cycle_first_step_size", Assert.Throws<ArgumentException>(() => new OneCycle(opt, 0.01, 0.1, cycleFirstStepSize: 0)).Message);
        Assert.Contains("cycle_max_mom", Assert.Throws<ArgumentException>(() => new OneCycle(opt, 0.01, 0.1, cycleMaxMom: 1.5)).Message);
        Assert.Contains("cycle_min_lr", Assert.Throws<ArgumentException>(() => new OneCycle(opt, -1, 0.1)).Message);
    }
}
