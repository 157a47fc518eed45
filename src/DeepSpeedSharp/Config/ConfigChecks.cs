namespace DeepSpeedSharp.Config;

/// <summary>Cross-field consistency checks (DeepSpeed's <c>_do_error_check</c> and the ZeRO/offload validators).</summary>
internal static class ConfigChecks
{
    public static void Validate(DeepSpeedConfig c)
    {
        var z = c.ZeroOptimization;
        if (c.Fp16.Enabled && c.Bf16.Enabled)
            throw new DeepSpeedConfigException("fp16.enabled and bf16.enabled are both true; enable at most one mixed-precision mode");
        if (z.OffloadParam.Enabled && z.Stage != 3)
            throw new DeepSpeedConfigException($"zero_optimization.offload_param is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})");
        if (z.OffloadOptimizer.Enabled && z.Stage == 0)
            throw new DeepSpeedConfigException("zero_optimization.offload_optimizer needs ZeRO stage 1, 2 or 3 (zero_optimization.stage is 0)");
        if (z.OffloadOptimizer.Ratio != 1.0 && z.Stage != 3)
            throw new DeepSpeedConfigException($"zero_optimization.offload_optimizer.ratio = {z.OffloadOptimizer.Ratio} (partial offload) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})");
        if (c.Fp16.Fp16MasterWeightsAndGrads && z.Stage < 1)
            throw new DeepSpeedConfigException("fp16.fp16_master_weights_and_grads needs ZeRO stage ≥ 1 (zero_optimization.stage is 0)");
        if (c.Bf16.Bf16MasterWeightsAndGrads && z.Stage < 1)
            throw new DeepSpeedConfigException("bf16.bf16_master_weights_and_grads needs ZeRO stage ≥ 1 (zero_optimization.stage is 0)");
        if (c.Bf16.Bf16OptimizerStates && (z.Stage < 1 || !c.Bf16.Bf16MasterWeightsAndGrads))
            throw new DeepSpeedConfigException("bf16.bf16_optimizer_states needs ZeRO stage ≥ 1 and bf16.bf16_master_weights_and_grads = true");
        if (c.GradientAllreduceOp == "sum" && z.Stage == 3)
            throw new DeepSpeedConfigException("gradient_allreduce_op \"sum\" is incompatible with ZeRO stage 3; use \"mean\" or a lower stage");
        if (z.ZeroHpzPartitionSize > 1 && z.Stage != 3)
            throw new DeepSpeedConfigException($"zero_optimization.zero_hpz_partition_size = {z.ZeroHpzPartitionSize} (ZeRO++ hpZ) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})");
        if (z.ZeroQuantizedWeights && z.Stage != 3)
            throw new DeepSpeedConfigException($"zero_optimization.zero_quantized_weights = true (ZeRO++ qwZ) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})");
        if (z.ZeroQuantizedGradients && z.Stage != 3)
            throw new DeepSpeedConfigException($"zero_optimization.zero_quantized_gradients = true (ZeRO++ qgZ) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})");
        if (int.TryParse(c.Pipeline.Stages, out var stages) && stages > 1)
            CheckPipeline(z.Stage, stages, "pipeline.stages");
    }

    public static void CheckPipeline(int zeroStage, int pipelineStages, string source)
    {
        if (pipelineStages > 1 && zeroStage >= 2)
            throw new DeepSpeedConfigException(
                $"ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism (zero_optimization.stage is {zeroStage}, {source} is {pipelineStages}); use ZeRO stage 0 or 1");
    }
}
