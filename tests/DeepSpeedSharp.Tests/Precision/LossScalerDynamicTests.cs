using DeepSpeedSharp.Config;
using DeepSpeedSharp.Precision;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>
/// Hand-traced sequences of DeepSpeed's <c>DynamicLossScaler.update_scale</c>. Notation per step:
/// iter = cur_iter before the update, last = last_overflow_iter, stable = iter - last - 1, h = cur_hysteresis.
/// O = overflow, C = clean.
/// </summary>
public class LossScalerDynamicTests
{
    private const bool O = true, C = false;

    internal static DynamicLossScaler Make(int power = 4, int window = 4, int hysteresis = 2, bool consecutive = false, double min = 1) =>
        (DynamicLossScaler)LossScaler.FromConfig(new Fp16Config
        {
            Enabled = true, InitialScalePower = power, LossScaleWindow = window, Hysteresis = hysteresis,
            ConsecutiveHysteresis = consecutive, MinLossScale = min,
        });

    internal static (double[] Scales, int[] Hyst) Run(DynamicLossScaler s, bool[] flags)
    {
        var scales = new double[flags.Length];
        var hyst = new int[flags.Length];
        for (var i = 0; i < flags.Length; i++)
        {
            s.Update(flags[i]);
            scales[i] = s.Scale;
            hyst[i] = s.CurHysteresis;
        }
        return (scales, hyst);
    }

    internal static readonly bool[] Flags = { C, C, C, C, C, O, C, O, O, C, C, C, C, C, O, C };

    [Fact]
    public void DefaultHysteresis2Window4()
    {
        // 2^4 = 16, h = 2, last = -1.
        // iter 0-3 C: stable 0..3, not a positive multiple of 4          -> 16, h 2
        // iter 4 C: stable 4 % 4 == 0 -> h = 2, scale *= 2                -> 32, h 2
        // iter 5 O: delayed_shift 2, h 2 != 1 -> h = 1; last = 5          -> 32, h 1
        // iter 6 C: stable 0; not consecutive, h stays 1                  -> 32, h 1
        // iter 7 O: h == 1 -> max(32/2, 1) = 16; last = 7 (h stays 1)     -> 16, h 1
        // iter 8 O: h == 1 -> 8; last = 8                                 -> 8, h 1
        // iter 9-12 C: stable 0..3                                        -> 8, h 1
        // iter 13 C: stable 4 -> h = 2, scale 16                          -> 16, h 2
        // iter 14 O: h 2 -> 1; last = 14                                  -> 16, h 1
        // iter 15 C: stable 0                                             -> 16, h 1
        var s = Make();
        Assert.Equal(16.0, s.Scale);
        var (scales, hyst) = Run(s, Flags);
        Assert.Equal(new double[] { 16, 16, 16, 16, 32, 32, 32, 16, 8, 8, 8, 8, 8, 16, 16, 16 }, scales);
        Assert.Equal(new[] { 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1 }, hyst);
        Assert.Equal(16, s.CurIter);
        Assert.Equal(14, s.LastOverflowIter);
    }

    [Fact]
    public void ConsecutiveHysteresisRefillsOnEveryCleanStep()
    {
        // Same flags, consecutive_hysteresis = true: every C first sets h = delayed_shift (2).
        // iter 0-3 C                        -> 16, h 2
        // iter 4 C: stable 4 -> scale 32    -> 32, h 2
        // iter 5 O: h 2 -> 1; last 5        -> 32, h 1
        // iter 6 C: h = 2; stable 0         -> 32, h 2
        // iter 7 O: h 2 -> 1 (no halving, unlike the non-consecutive run); last 7 -> 32, h 1
        // iter 8 O: h == 1 -> 16; last 8    -> 16, h 1
        // iter 9 C: h = 2; stable 0         -> 16, h 2
        // iter 10-12 C: stable 1..3         -> 16, h 2
        // iter 13 C: stable 4 -> 32         -> 32, h 2
        // iter 14 O: h -> 1                 -> 32, h 1
        // iter 15 C: h = 2                  -> 32, h 2
        var s = Make(consecutive: true);
        var (scales, hyst) = Run(s, Flags);
        Assert.Equal(new double[] { 16, 16, 16, 16, 32, 32, 32, 32, 16, 16, 16, 16, 16, 32, 32, 32 }, scales);
        Assert.Equal(new[] { 2, 2, 2, 2, 2, 1, 2, 1, 1, 2, 2, 2, 2, 2, 1, 2 }, hyst);
    }

    [Fact]
    public void Hysteresis1HalvesOnEveryOverflowAndWindowCountsFromLastOverflow()
    {
        // 2^3 = 8, delayed_shift 1 (so h is always 1), window 4.
        // iter 0 O: delayed_shift == 1 -> 4; last 0
        // iter 1 C: stable 0                  -> 4
        // iter 2 O: -> 2; last 2
        // iter 3-6 C: stable 0..3             -> 2
        // iter 7 C: stable 4 -> 4
        // iter 8 O: -> 2; last 8
        var s = Make(power: 3, hysteresis: 1);
        var (scales, hyst) = Run(s, new[] { O, C, O, C, C, C, C, C, O });
        Assert.Equal(new double[] { 4, 4, 2, 2, 2, 2, 2, 4, 2 }, scales);
        Assert.All(hyst, h => Assert.Equal(1, h));
        Assert.Equal(8, s.LastOverflowIter);
        Assert.Equal(9, s.CurIter);
    }

    [Fact]
    public void MinLossScaleFloorClampsThenRaisesLikeDeepSpeed()
    {
        // 2^2 = 4, hysteresis 1, min 1.5.
        // iter 0 O: max(4/2, 1.5) = 2; iter 1 O: max(2/2, 1.5) = 1.5 (clamped, not 1)
        // iter 2 O: cur_scale == min_scale and raise_error_at_min_scale -> DeepSpeed raises; nothing changes.
        var s = Make(power: 2, hysteresis: 1, min: 1.5);
        var (scales, _) = Run(s, new[] { O, O });
        Assert.Equal(new[] { 2.0, 1.5 }, scales);
        var ex = Assert.Throws<InvalidOperationException>(() => s.Update(true));
        Assert.Contains("fp16.min_loss_scale=1.5", ex.Message);
        Assert.Contains("iteration 2", ex.Message);
        Assert.Equal(1.5, s.Scale);
        Assert.Equal(2, s.CurIter);
        Assert.Equal(1, s.LastOverflowIter);
        // A clean step is still fine at the floor: stable = 2 - 1 - 1 = 0.
        s.Update(false);
        Assert.Equal(1.5, s.Scale);
    }

    [Fact]
    public void HysteresisIsSpentBeforeTheMinimumCheck()
    {
        // 2^0 = 1 = min, hysteresis 2: iter 0 O only spends h (2 -> 1), no error; iter 1 O: h == 1 at the min -> raise.
        var s = Make(power: 0, hysteresis: 2, min: 1);
        s.Update(true);
        Assert.Equal((1.0, 1), (s.Scale, s.CurHysteresis));
        Assert.Throws<InvalidOperationException>(() => s.Update(true));
    }

    [Fact]
    public void WithoutRaiseTheScaleStaysAtTheFloor()
    {
        // raise_error_at_min_scale = false: max(cur/2, min) keeps returning min; last_overflow_iter still moves.
        var s = new DynamicLossScaler(4, scaleWindow: 4, minScale: 1.5, hysteresis: 1, raiseErrorAtMinScale: false);
        var (scales, _) = Run(s, new[] { O, O, O, O });
        Assert.Equal(new[] { 2.0, 1.5, 1.5, 1.5 }, scales);
        Assert.Equal(3, s.LastOverflowIter);
    }
}
