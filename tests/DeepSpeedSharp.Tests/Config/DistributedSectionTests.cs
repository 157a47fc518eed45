using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Tests.Config;

/// <summary>The <c>distributed</c> section (DeepSpeedSharp's own): the collective and heartbeat timeouts.</summary>
public class DistributedSectionTests
{
    [Fact]
    public void UnsetKeysLeaveTheTimeoutsToInitialisation()
    {
        var c = DeepSpeedConfig.FromJson("""{"train_batch_size": 8}""");
        Assert.Null(c.Distributed.TimeoutSeconds);
        Assert.Null(c.Distributed.HeartbeatTimeoutSeconds);
    }

    [Fact]
    public void BothKeysAreReadAndRoundTrip()
    {
        var c = DeepSpeedConfig.FromJson("""{"train_batch_size": 8, "distributed": {"timeout_seconds": 90, "heartbeat_timeout_seconds": 12.5}}""");
        Assert.Equal(90, c.Distributed.TimeoutSeconds);
        Assert.Equal(12.5, c.Distributed.HeartbeatTimeoutSeconds);
        Assert.Equal(c.ToJson(), DeepSpeedConfig.FromJson(c.ToJson()).ToJson());
    }

    [Theory]
    [InlineData("timeout_seconds", "0")]
    [InlineData("heartbeat_timeout_seconds", "-1")]
    [InlineData("heartbeat_timeout_seconds", "\"soon\"")]
    [InlineData("timeout_seconds", "1e300")] // once an unhandled TimeSpan overflow on every rank
    [InlineData("heartbeat_timeout_seconds", "1e18")]
    public void ANonPositiveOrNonNumericTimeoutNamesTheKey(string key, string value)
    {
        var e = Assert.Throws<DeepSpeedConfigException>(() =>
            DeepSpeedConfig.FromJson("{\"train_batch_size\": 8, \"distributed\": {\"" + key + "\": " + value + "}}"));
        Assert.Contains($"distributed.{key}", e.Message);
    }

    [Fact]
    public void AMistypedKeyIsRejectedWithASuggestion()
    {
        var e = Assert.Throws<DeepSpeedConfigException>(() =>
            DeepSpeedConfig.FromJson("""{"train_batch_size": 8, "distributed": {"timeout_second": 90}}"""));
        Assert.Contains("timeout_second", e.Message);
        Assert.Contains("timeout_seconds", e.Message);
    }

    /// <summary>The environment's timeouts have the same bound, and a huge value is shown cut, with its length.</summary>
    [Fact]
    public void TheEnvironmentsTimeoutsAreBoundedAndLongValuesAreCut()
    {
        var e = Assert.Throws<ArgumentException>(() => DeepSpeedSharp.Comm.LaunchEnvironment.From(new Dictionary<string, string?> { ["DEEPSPEED_TIMEOUT"] = "1e300" }.GetValueOrDefault));
        Assert.Equal("DEEPSPEED_TIMEOUT='1e300' must be a positive number of minutes, at most 43200 (30 days).", e.Message);
        var huge = new string('9', 1_000_000);
        e = Assert.Throws<ArgumentException>(() => DeepSpeedSharp.Comm.LaunchEnvironment.From(new Dictionary<string, string?> { ["DSS_HEARTBEAT_TIMEOUT"] = huge }.GetValueOrDefault));
        Assert.StartsWith("DSS_HEARTBEAT_TIMEOUT='9999", e.Message);
        Assert.Contains("… (1000000 characters)' must be a positive number of seconds", e.Message);
        Assert.True(e.Message.Length < 200, e.Message);
    }
}
