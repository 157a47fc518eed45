using System.Globalization;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Config.Schema;

namespace DeepSpeedSharp.Tests.Config;

/// <summary>
/// Every numeric key of the schema declares the range it accepts, and a value outside it is rejected with one line
/// naming the key, the value and the range. The keys come from the schema itself (<c>DeepSpeedConfig.SchemaKeys</c>),
/// so a new key that takes numbers but declares no range makes these tests fail.
/// </summary>
public sealed class ConfigRangeTests
{
    private static readonly string[] OptimizerTypes = ["Adam", "SGD"];
    private static readonly string[] SchedulerTypes = ["WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "LRRangeTest"];

    /// <summary>Every leaf key the reader accepts (canonical dotted path).</summary>
    public static TheoryData<string> AllKeys()
    {
        var data = new TheoryData<string>();
        foreach (var k in DeepSpeedConfig.SchemaKeys()) data.Add(k.Path);
        return data;
    }

    private static SchemaKey Key(string path) => DeepSpeedConfig.SchemaKeys().Single(k => k.Path == path);

    /// <summary>The errors of a config with <paramref name="path"/> set to <paramref name="value"/> (raw JSON), inside
    /// an optimizer or scheduler of a type that has the key; empty when it loads.</summary>
    private static List<string> ErrorsWith(string path, string value)
    {
        var parts = path.Split('.');
        if (parts[0] is "optimizer" or "scheduler" && parts.Length == 3)
        {
            List<string>? last = null;
            foreach (var type in parts[0] == "optimizer" ? OptimizerTypes : SchedulerTypes)
            {
                var p = new JsonObject { [parts[2]] = JsonNode.Parse(value) };
                if (type is "WarmupDecayLR" or "WarmupCosineLR") p.TryAdd("total_num_steps", 100);
                if (type is "OneCycle") { p.TryAdd("cycle_min_lr", 0.001); p.TryAdd("cycle_max_lr", 10.0); }
                var root = new JsonObject { [parts[0]] = new JsonObject { ["type"] = type, ["params"] = p } };
                last = Errors(root.ToJsonString());
                if (!last.Any(e => e.StartsWith($"unknown key '{parts[2]}'", StringComparison.Ordinal))) return last;
            }
            return last!;
        }
        JsonNode node = JsonNode.Parse(value)!;
        for (int i = parts.Length - 1; i >= 0; i--) node = new JsonObject { [parts[i]] = node };
        return Errors(node.ToJsonString());
    }

    private static List<string> Errors(string json)
    {
        try
        {
            DeepSpeedConfig.FromJson(json);
            return [];
        }
        catch (DeepSpeedConfigException e)
        {
            return e.Errors.ToList();
        }
    }

    private static string Text(double v, bool integer) =>
        integer ? ((decimal)v).ToString(CultureInfo.InvariantCulture) : v.ToString("R", CultureInfo.InvariantCulture);

    [Theory]
    [MemberData(nameof(AllKeys))]
    public void EveryKeyThatTakesANumberDeclaresARange(string path)
    {
        var typeError = ErrorsWith(path, "1").Any(e => e.StartsWith($"{path}: expected ", StringComparison.Ordinal) && e.Contains("got a number", StringComparison.Ordinal));
        var range = Key(path).Range;
        if (typeError)
        {
            Assert.True(range is null, $"{path} declares a range but does not take numbers");
            return;
        }
        Assert.True(range is not null, $"{path} takes numbers but declares no range: give its kind a minimum (Kinds.Int/Long/Double) or WithRange");
        Assert.True(range!.Below() is not null || range.Above() is not null, $"{path}: the range {range.Describe()} has no bound");
    }

    [Theory]
    [MemberData(nameof(AllKeys))]
    public void OutOfRangeValuesAreRejectedNamingKeyValueAndRange(string path)
    {
        if (Key(path).Range is not { } range) return;
        var outside = new List<double>();
        if (range.Below() is { } below) outside.Add(below);
        if (range.Above() is { } above) outside.Add(above);
        if (range.Integer && range.Max == int.MaxValue) outside.Add(int.MaxValue + 1.0); // must fit an int
        Assert.NotEmpty(outside);
        foreach (var v in outside)
        {
            var text = Text(v, range.Integer);
            var errors = ErrorsWith(path, text);
            Assert.True(errors.Any(e => e.StartsWith($"{path}: must be ", StringComparison.Ordinal) && e.EndsWith($", got {text}", StringComparison.Ordinal)),
                $"{path} = {text} should be rejected naming key, value and range; errors: [{string.Join(" | ", errors)}]");
        }
        if (range.Integer)
            Assert.Contains(ErrorsWith(path, "2.5"), e => e.StartsWith($"{path}: ", StringComparison.Ordinal));
    }

    [Fact]
    public void RangesMatchDeepSpeedWhereItTreatsZeroOrMinusOneSpecially()
    {
        Assert.Equal("an integer ≥ 0", Key("zero_optimization.reduce_bucket_size").Range!.Describe());        // ge=0; 0 = one parameter's worth
        Assert.Equal("an integer ≥ 0", Key("zero_optimization.stage3_prefetch_bucket_size").Range!.Describe()); // 0 = no prefetch
        Assert.Equal("an integer ≥ 0", Key("zero_optimization.stage3_param_persistence_threshold").Range!.Describe());
        Assert.Equal("an integer ≥ 0", Key("zero_optimization.stage3_max_reuse_distance").Range!.Describe());   // -1 rejected, as DeepSpeed does
        Assert.Equal("a positive integer", Key("zero_optimization.allgather_bucket_size").Range!.Describe());
        Assert.Equal("an integer ≥ -1", Key("zero_optimization.mics_shard_size").Range!.Describe());            // -1 = off
        Assert.Equal("an integer ≥ -1", Key("flops_profiler.module_depth").Range!.Describe());                  // -1 = all depths
        Assert.Equal("a positive integer or \"auto\"", Key("train_batch_size").Range!.Describe());
        Assert.Equal("a number > 0", Key("gradient_predivide_factor").Range!.Describe());
        Assert.Equal("a number ≥ 0", Key("fp16.loss_scale").Range!.Describe());                                 // 0 = dynamic
        Assert.NotNull(DeepSpeedConfig.FromJson("""{"train_batch_size": "auto", "pipeline": {"stages": "auto"}}"""));
    }

    [Fact]
    public void ReduceBucketSizeZeroIsAcceptedAsDeepSpeedDoesButWarned()
    {
        // Hugging Face's ZeRO-3 test config (in the corpus) uses 0; DeepSpeed accepts it (ge=0).
        var c = DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 2, "reduce_bucket_size": 0}}""");
        Assert.Equal(0, c.ZeroOptimization.ReduceBucketSize);
        Assert.Contains(c.Warnings, w => w.StartsWith("zero_optimization.reduce_bucket_size is 0: ", StringComparison.Ordinal));
        Assert.DoesNotContain(DeepSpeedConfig.FromJson("""{"zero_optimization": {"reduce_bucket_size": 5e8}}""").Warnings,
            w => w.Contains("reduce_bucket_size", StringComparison.Ordinal));
        Assert.Equal(["zero_optimization.reduce_bucket_size: must be an integer ≥ 0, got -1"],
            Errors("""{"zero_optimization": {"reduce_bucket_size": -1}}"""));
    }

    [Fact]
    public void AllgatherBucketSizeZeroIsRejectedByTheLibraryAndValidateConfig()
    {
        const string message = "zero_optimization.allgather_bucket_size: must be a positive integer, got 0";
        Assert.Equal([message], Errors("""{"zero_optimization": {"stage": 2, "allgather_bucket_size": 0}}"""));
        var file = Path.Combine(Path.GetTempPath(), $"allgather0-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """{"train_batch_size": 8, "zero_optimization": {"stage": 2, "reduce_bucket_size": 0, "allgather_bucket_size": 0}}""");
        try
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, new DeepSpeedSharp.Cli.Commands.ValidateConfigCommand().Run([file], o, e));
            Assert.Equal($"{file}: error: {message}", o.ToString().TrimEnd());
        }
        finally
        {
            File.Delete(file);
        }
    }
}
