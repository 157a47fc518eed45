using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Tests.Config;

public class ConfigDefaultsTests
{
    [Fact]
    public void TopLevelDefaults()
    {
        var c = DeepSpeedConfig.Default;
        Assert.Null(c.TrainBatchSize);
        Assert.Null(c.TrainMicroBatchSizePerGpu);
        Assert.Null(c.GradientAccumulationSteps);
        Assert.Equal(10, c.StepsPerPrint);
        Assert.Equal(0.0, c.GradientClipping);
        Assert.False(c.WallClockBreakdown);
        Assert.False(c.MemoryBreakdown);
        Assert.False(c.PrescaleGradients);
        Assert.Equal(1.0, c.GradientPredivideFactor);
        Assert.Equal("mean", c.GradientAllreduceOp);
        Assert.Null(c.CommunicationDataType);
        Assert.False(c.ZeroAllowUntestedOptimizer);
        Assert.True(c.ZeroForceDsCpuOptimizer);
        Assert.Null(c.Optimizer);
        Assert.Null(c.Scheduler);
        Assert.Empty(c.Warnings);
        Assert.Equal("fp32", c.Precision);
    }

    [Fact]
    public void SectionDefaultsMatchDeepSpeed()
    {
        var c = DeepSpeedConfig.Default;
        Assert.Equal(new ZeroConfig(), c.ZeroOptimization);
        var z = c.ZeroOptimization;
        Assert.Equal(0, z.Stage);
        Assert.True(z.ContiguousGradients);
        Assert.True(z.ReduceScatter);
        Assert.False(z.OverlapComm);
        Assert.Equal(500_000_000, z.ReduceBucketSize);
        Assert.Equal(500_000_000, z.AllgatherBucketSize);
        Assert.Equal(1_000_000_000, z.SubGroupSize);
        Assert.Equal(50_000_000, z.Stage3PrefetchBucketSize);
        Assert.Equal(100_000, z.Stage3ParamPersistenceThreshold);
        Assert.Equal(long.MaxValue, z.Stage3ModelPersistenceThreshold);
        Assert.Equal(1_000_000_000, z.Stage3MaxLiveParameters);
        Assert.Equal(1_000_000_000, z.Stage3MaxReuseDistance);
        Assert.Equal(1, z.ZeroHpzPartitionSize);
        Assert.True(z.IgnoreUnusedParameters);
        Assert.Equal(("none", true, 1.0, 4, 0.8, false), (z.OffloadOptimizer.Device, z.OffloadOptimizer.PinMemory, z.OffloadOptimizer.Ratio, z.OffloadOptimizer.BufferCount, z.OffloadOptimizer.CpuadamCoresPerc, z.OffloadOptimizer.Enabled));
        Assert.Equal(("none", true, 5, 100_000_000L, 1_000_000_000L), (z.OffloadParam.Device, z.OffloadParam.PinMemory, z.OffloadParam.BufferCount, z.OffloadParam.BufferSize, z.OffloadParam.MaxInCpu));
        Assert.Equal(new Bf16Config { CheckGradOverflow = true }, c.Bf16);
        Assert.Equal((0.0, 16, 1000, 2, 1.0), (c.Fp16.LossScale, c.Fp16.InitialScalePower, c.Fp16.LossScaleWindow, c.Fp16.Hysteresis, c.Fp16.MinLossScale));
        Assert.Equal(new DataTypesConfig(), c.DataTypes);
        Assert.Equal(("auto", "best", true, true), (c.Pipeline.Stages, c.Pipeline.Partition, c.Pipeline.PipePartitioned, c.Pipeline.GradPartitioned));
        Assert.Equal((1, -1, 1, true), (c.FlopsProfiler.ProfileStep, c.FlopsProfiler.ModuleDepth, c.FlopsProfiler.TopModules, c.FlopsProfiler.Detailed));
        Assert.True(c.CommsLogger.ProfAll);
        Assert.Empty(c.CommsLogger.ProfOps);
        Assert.Equal(("", "DeepSpeedJobName"), (c.Tensorboard.OutputPath, c.Tensorboard.JobName));
        Assert.Equal("deepspeed", c.Wandb.Project);
        Assert.True(c.Timers.ThroughputEnabled && c.Timers.ThroughputSynchronized);
        Assert.Equal("Warn", c.Checkpoint.TagValidation);
        Assert.Equal((1_048_576L, 8), (c.Aio.BlockSize, c.Aio.QueueDepth));
    }

    [Fact]
    public void OverlapCommFollowsTheStageUnlessSet()
    {
        Assert.True(DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 3}}""").ZeroOptimization.OverlapComm);
        Assert.False(DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 2}}""").ZeroOptimization.OverlapComm);
        Assert.False(DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 3, "overlap_comm": false}}""").ZeroOptimization.OverlapComm);
        Assert.True(DeepSpeedConfig.FromJson("""{"zero_optimization": {"stage": 1, "overlap_comm": true}}""").ZeroOptimization.OverlapComm);
        Assert.True(new ZeroConfig { Stage = 3 }.OverlapComm);
    }

    [Fact]
    public void OptimizerDefaultsPerType()
    {
        var adam = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "Adam"}}""").Optimizer!;
        Assert.Equal(("adam", 1e-3, 0.9, 0.999, 1e-8, 0.0, true, true), (adam.Type, adam.Lr, adam.Beta1, adam.Beta2, adam.Eps, adam.WeightDecay, adam.BiasCorrection, adam.AdamWMode));
        var adamL2 = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "adam", "params": {"adam_w_mode": false}}}""").Optimizer!;
        Assert.False(adamL2.AdamWMode);
        var adamw = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "ADAMW", "params": {"lr": 0.1, "betas": [0.8, 0.95]}}}""").Optimizer!;
        Assert.Equal(("adamw", 0.1, 0.8, 0.95, true, 0.0), (adamw.Type, adamw.Lr, adamw.Beta1, adamw.Beta2, adamw.AdamWMode, adamw.WeightDecay));
        var torchAdamW = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "AdamW", "params": {"torch_adam": true}}}""").Optimizer!;
        Assert.Equal(0.01, torchAdamW.WeightDecay);
        var torchAdamL2 = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "Adam", "params": {"torch_adam": true, "adam_w_mode": false}}}""").Optimizer!;
        Assert.Equal(0.0, torchAdamL2.WeightDecay);
        var sgd = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "SGD", "params": {"lr": 0.1, "momentum": 0.9, "nesterov": true}}}""").Optimizer!;
        Assert.Equal(("sgd", 0.1, 0.9, true), (sgd.Type, sgd.Lr, sgd.Momentum, sgd.Nesterov));
    }

    [Fact]
    public void SchedulerDefaultsPerType()
    {
        var warm = DeepSpeedConfig.FromJson("""{"scheduler": {"type": "WarmupLR"}}""").Scheduler!;
        Assert.Equal((0.0, (double?)null, 1000, "log"), (warm.WarmupMinLr, warm.WarmupMaxLr, warm.WarmupNumSteps, warm.WarmupType));
        var decay = DeepSpeedConfig.FromJson("""{"scheduler": {"type": "WarmupDecayLR", "params": {"total_num_steps": 50}}}""").Scheduler!;
        Assert.Equal((0.001, 50), (decay.WarmupMaxLr!.Value, decay.TotalNumSteps!.Value));
        var cosine = DeepSpeedConfig.FromJson("""{"scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": 9}}}""").Scheduler!;
        Assert.Equal((0.0, 1e-4), (cosine.WarmupMinRatio, cosine.CosMinRatio));
        var one = DeepSpeedConfig.FromJson("""{"scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 0.1, "cycle_max_lr": 1}}}""").Scheduler!;
        Assert.Equal((2000, (int?)null, 0, true, 0.8, 0.9), (one.CycleFirstStepSize, one.CycleSecondStepSize, one.CycleFirstStairCount, one.CycleMomentum, one.CycleMinMom, one.CycleMaxMom));
        var range = DeepSpeedConfig.FromJson("""{"scheduler": {"type": "LRRangeTest"}}""").Scheduler!;
        Assert.Equal((1e-3, 2000, 1.0, false), (range.LrRangeTestMinLr, range.LrRangeTestStepSize, range.LrRangeTestStepRate, range.LrRangeTestStaircase));
    }
}
