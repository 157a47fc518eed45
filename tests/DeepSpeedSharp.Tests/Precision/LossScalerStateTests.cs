using System.Text.Json;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Precision;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>State dict round trips (through JSON) mid-sequence, and rejection of bad or mismatched states.</summary>
public class LossScalerStateTests
{
    [Theory]
    [InlineData(false, 7)]
    [InlineData(true, 7)]
    [InlineData(false, 6)]
    [InlineData(true, 13)]
    public void RoundTripMidSequenceContinuesIdentically(bool consecutive, int split)
    {
        var flags = LossScalerDynamicTests.Flags;
        var original = LossScalerDynamicTests.Make(consecutive: consecutive);
        LossScalerDynamicTests.Run(original, flags[..split]);

        var json = JsonSerializer.Serialize(original.StateDict());
        // The restored scaler starts from a different config: the saved settings must win, as in DeepSpeed's ZeRO checkpoints.
        var restored = LossScalerDynamicTests.Make(power: 10, window: 50, hysteresis: 5, consecutive: !consecutive);
        restored.LoadStateDict(JsonSerializer.Deserialize<LossScalerState>(json)!);
        Assert.Equal(original.StateDict(), restored.StateDict());

        var rest = flags[split..];
        var a = LossScalerDynamicTests.Run(original, rest);
        var b = LossScalerDynamicTests.Run(restored, rest);
        Assert.Equal(a.Scales, b.Scales);
        Assert.Equal(a.Hyst, b.Hyst);
        Assert.Equal(original.StateDict(), restored.StateDict());
        // And the continued run equals the uninterrupted hand-traced sequence.
        var full = LossScalerDynamicTests.Run(LossScalerDynamicTests.Make(consecutive: consecutive), flags);
        Assert.Equal(full.Scales[split..], b.Scales);
    }

    [Fact]
    public void JsonUsesDeepSpeedKeys()
    {
        var s = LossScalerDynamicTests.Make();
        s.Update(true);
        var json = JsonSerializer.Serialize(s.StateDict());
        Assert.Equal(
            "{\"dynamic_loss_scale\":true,\"cur_scale\":16,\"cur_iter\":1,\"last_overflow_iter\":0,\"cur_hysteresis\":1," +
            "\"scale_factor\":2,\"scale_window\":4,\"min_scale\":1,\"delayed_shift\":2,\"consecutive_hysteresis\":false," +
            "\"raise_error_at_min_scale\":true}", json);
    }

    [Fact]
    public void StaticRoundTripAndKindMismatch()
    {
        var s = new StaticLossScaler(64);
        s.Update(true);
        var t = new StaticLossScaler(8);
        t.LoadStateDict(JsonSerializer.Deserialize<LossScalerState>(JsonSerializer.Serialize(s.StateDict()))!);
        Assert.Equal((64.0, 1L), (t.Scale, t.CurIter));

        var dyn = LossScaler.FromConfig(new Fp16Config { Enabled = true });
        Assert.Contains("fp16.loss_scale", Assert.Throws<ArgumentException>(() => dyn.LoadStateDict(s.StateDict())).Message);
        Assert.Contains("dynamic_loss_scale=true", Assert.Throws<ArgumentException>(() => t.LoadStateDict(dyn.StateDict())).Message);
    }

    [Fact]
    public void MissingCurHysteresisMeansFullAndBadValuesAreNamed()
    {
        var s = LossScalerDynamicTests.Make(hysteresis: 3);
        s.LoadStateDict(new LossScalerState(true, 256, 10) { LastOverflowIter = 4 });
        Assert.Equal((256.0, 10L, 4L, 3), (s.Scale, s.CurIter, s.LastOverflowIter, s.CurHysteresis));

        var bad = new (LossScalerState State, string Key)[]
        {
            (new LossScalerState(true, 256, 10), "last_overflow_iter"),
            (new LossScalerState(true, 256, 10) { LastOverflowIter = 10 }, "last_overflow_iter=10"),
            (new LossScalerState(true, 256, 10) { LastOverflowIter = 4, CurHysteresis = 0 }, "cur_hysteresis=0"),
            (new LossScalerState(true, 256, 10) { LastOverflowIter = 4, CurHysteresis = 4 }, "delayed_shift=3"),
            (new LossScalerState(true, double.NaN, 10) { LastOverflowIter = 4 }, "cur_scale"),
            (new LossScalerState(true, 256, -1) { LastOverflowIter = -1 }, "cur_iter"),
            (new LossScalerState(true, 256, 10) { LastOverflowIter = 4, MinScale = 0 }, "min_scale"),
        };
        foreach (var (state, key) in bad)
            Assert.Contains(key, Assert.Throws<ArgumentException>(() => s.LoadStateDict(state)).Message);
    }
}
