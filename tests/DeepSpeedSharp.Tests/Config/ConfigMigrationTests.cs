using DeepSpeedSharp.Config;
using static DeepSpeedSharp.Tests.Config.ConfigTestHelpers;

namespace DeepSpeedSharp.Tests.Config;

public class ConfigMigrationTests
{
    [Fact]
    public void CpuOffloadBecomesOffloadOptimizerCpu()
    {
        var c = DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 2, "cpu_offload": true}}""");
        Assert.Equal("cpu", c.ZeroOptimization.OffloadOptimizer.Device);
        Assert.Contains(c.Warnings, w => w.Contains("'zero_optimization.cpu_offload' is deprecated"));
        var off = DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 2, "cpu_offload": false}}""");
        Assert.False(off.ZeroOptimization.OffloadOptimizer.Enabled);
        Assert.Contains("both 'zero_optimization.cpu_offload'", ErrorOf("""{"zero_optimization": {"stage": 2, "cpu_offload": true, "offload_optimizer": {"device": "cpu"}}}"""));
    }

    [Fact]
    public void CpuOffloadParamAndPinMemoryMigrate()
    {
        var c = DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 3, "cpu_offload": true, "cpu_offload_param": true, "cpu_offload_use_pin_memory": false}}""");
        var z = c.ZeroOptimization;
        Assert.Equal(("cpu", false, "cpu", false), (z.OffloadOptimizer.Device, z.OffloadOptimizer.PinMemory, z.OffloadParam.Device, z.OffloadParam.PinMemory));
        Assert.Equal(3, c.Warnings.Count(w => w.Contains("deprecated")));
    }

    [Fact]
    public void RenamedKeysMigrateWithAWarning()
    {
        var c = DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 3, "stage3_gather_fp16_weights_on_model_save": true}, "bf16": {"enabled": true, "check_overflow": false}}""");
        Assert.True(c.ZeroOptimization.Stage3Gather16BitWeightsOnModelSave);
        Assert.False(c.Bf16.CheckGradOverflow);
        Assert.Contains(c.Warnings, w => w.Contains("stage3_gather_fp16_weights_on_model_save' is deprecated; use 'zero_optimization.stage3_gather_16bit_weights_on_model_save'"));
        Assert.Contains(c.Warnings, w => w.Contains("'bf16.check_overflow' is deprecated; use 'bf16.check_grad_overflow'"));
        Assert.Contains("\"stage3_gather_16bit_weights_on_model_save\": true", c.ToJson());
    }

    [Fact]
    public void LegacyBooleanZeroOptimization()
    {
        var on = DeepSpeedConfig.FromJson("""{"zero_optimization": true}""");
        Assert.Equal(1, on.ZeroOptimization.Stage);
        Assert.Contains(on.Warnings, w => w.Contains("deprecated"));
        Assert.Equal(0, DeepSpeedConfig.FromJson("""{"zero_optimization": false}""").ZeroOptimization.Stage);
    }

    [Fact]
    public void Bfloat16IsTheOldNameOfBf16()
    {
        var c = DeepSpeedConfig.FromJson("""{"bfloat16": {"enabled": true}}""");
        Assert.True(c.Bf16.Enabled);
        Assert.Contains(c.Warnings, w => w.Contains("'bfloat16' is deprecated"));
        Assert.Contains("both 'bf16' and its old name 'bfloat16'", ErrorOf("""{"bfloat16": {"enabled": true}, "bf16": {"enabled": true}}"""));
    }

    [Fact]
    public void AliasesAreAcceptedSilentlyButNotTogetherWithTheCanonicalName()
    {
        var c = DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 3, "prefetch_bucket_size": 7, "param_persistence_threshold": 8, "max_live_parameters": 9, "max_reuse_distance": 10}, "aio": {"thread_count": 2}}""");
        var z = c.ZeroOptimization;
        Assert.Equal((7L, 8L, 9L, 10L), (z.Stage3PrefetchBucketSize, z.Stage3ParamPersistenceThreshold, z.Stage3MaxLiveParameters, z.Stage3MaxReuseDistance));
        Assert.Equal(2, c.Aio.IntraOpParallelism);
        Assert.DoesNotContain(c.Warnings, w => w.Contains("deprecated"));
        Assert.Contains("both 'stage3_prefetch_bucket_size' and 'prefetch_bucket_size'",
            ErrorOf("""{"zero_optimization": {"stage3_prefetch_bucket_size": 1, "prefetch_bucket_size": 2}}"""));
    }

    [Fact]
    public void AutoInsideSectionsTakesTheDefaultAndIsRecorded()
    {
        var c = DeepSpeedConfig.FromJson("""
            {"train_micro_batch_size_per_gpu": 2,
             "zero_optimization": {"stage": 3, "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto"},
             "bf16": {"enabled": "auto"}, "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto"}}}
            """);
        Assert.Equal(500_000_000, c.ZeroOptimization.ReduceBucketSize);
        Assert.Equal(50_000_000, c.ZeroOptimization.Stage3PrefetchBucketSize);
        Assert.False(c.Bf16.Enabled);
        Assert.Equal((1e-3, 0.9), (c.Optimizer!.Lr, c.Optimizer.Beta1));
        Assert.Equal(["zero_optimization.reduce_bucket_size", "zero_optimization.stage3_prefetch_bucket_size", "bf16.enabled", "optimizer.params.lr", "optimizer.params.betas"], c.AutoKeys);
        Assert.Contains(c.Warnings, w => w.Contains("\"auto\" values replaced") && w.Contains("optimizer.params.lr"));
    }

    [Fact]
    public void TopLevelAutoTakesTheDefaultWithAWarning()
    {
        var c = DeepSpeedConfig.FromJson("""{"gradient_clipping": "auto", "steps_per_print": "auto", "train_batch_size": 4}""");
        Assert.Equal(0.0, c.GradientClipping);
        Assert.Equal(10, c.StepsPerPrint);
        Assert.Contains(c.Warnings, w => w.Contains("'gradient_clipping' is \"auto\"; using the default 0"));
        Assert.Contains(c.Warnings, w => w.Contains("'steps_per_print' is \"auto\""));
    }
}
