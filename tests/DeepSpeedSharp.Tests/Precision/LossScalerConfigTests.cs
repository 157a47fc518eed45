using DeepSpeedSharp.Config;
using DeepSpeedSharp.Precision;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>FromConfig choices and validation, and the static scaler ignoring overflow.</summary>
public class LossScalerConfigTests
{
    [Fact]
    public void DefaultDynamicConfigMatchesDeepSpeedDefaults()
    {
        var s = Assert.IsType<DynamicLossScaler>(LossScaler.FromConfig(new Fp16Config { Enabled = true }));
        Assert.True(s.Dynamic);
        Assert.Equal(65536.0, s.Scale); // 2^16
        Assert.Equal((1000, 2, 1.0, false, true), (s.ScaleWindow, s.Hysteresis, s.MinScale, s.ConsecutiveHysteresis, s.RaiseErrorAtMinScale));
        Assert.Equal((0L, -1L, 2), (s.CurIter, s.LastOverflowIter, s.CurHysteresis));
    }

    [Fact]
    public void StaticScalerIgnoresOverflowButCountsIterations()
    {
        var s = Assert.IsType<StaticLossScaler>(LossScaler.FromConfig(new Fp16Config { Enabled = true, LossScale = 128 }));
        Assert.False(s.Dynamic);
        foreach (var overflow in new[] { true, true, false, true, false })
        {
            s.Update(overflow);
            Assert.Equal(128.0, s.Scale);
        }
        Assert.Equal(5, s.CurIter);
        Assert.Equal(new LossScalerState(false, 128, 5), s.StateDict());
    }

    [Fact]
    public void Fp16DisabledGivesScaleOne()
    {
        var s = LossScaler.FromConfig(new Fp16Config { Enabled = false, LossScale = 0 });
        Assert.IsType<StaticLossScaler>(s);
        Assert.Equal(1.0, s.Scale);
    }

    [Theory]
    [InlineData(0.0, 4, 2, "fp16.min_loss_scale")]
    [InlineData(1.0, 0, 2, "fp16.loss_scale_window")]
    [InlineData(1.0, 4, 0, "fp16.hysteresis")]
    public void BadDynamicSettingsNameTheKey(double min, int window, int hysteresis, string key)
    {
        var ex = Assert.Throws<DeepSpeedConfigException>(() => LossScaler.FromConfig(new Fp16Config
        {
            Enabled = true, MinLossScale = min, LossScaleWindow = window, Hysteresis = hysteresis,
        }));
        Assert.Contains(key, ex.Message);
    }

    [Fact]
    public void BadStaticAndPowerValuesAreRejected()
    {
        Assert.Contains("fp16.loss_scale", Assert.Throws<DeepSpeedConfigException>(() =>
            LossScaler.FromConfig(new Fp16Config { Enabled = true, LossScale = double.PositiveInfinity })).Message);
        Assert.Contains("fp16.initial_scale_power=2000", Assert.Throws<DeepSpeedConfigException>(() =>
            LossScaler.FromConfig(new Fp16Config { Enabled = true, InitialScalePower = 2000 })).Message);
    }
}
