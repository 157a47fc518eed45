using DeepSpeedSharp.Config.Schema;

namespace DeepSpeedSharp.Config;

/// <summary>
/// Cross-field consistency checks (DeepSpeed's <c>_do_error_check</c> and the ZeRO/offload validators). Every failing
/// check is recorded (the reader reports all errors of a file at once); a check is skipped when one of its keys failed
/// to read, since that key then holds its default and the check would blame the wrong value.
/// </summary>
internal static class ConfigChecks
{
    private const string Stage = "zero_optimization.stage";

    public static void Validate(DeepSpeedConfig c, ReadContext ctx)
    {
        var z = c.ZeroOptimization;
        void Check(bool bad, string message, params string[] keys)
        {
            if (bad && !ctx.AnyFailed(keys)) ctx.Errors.Add(message);
        }

        Check(c.Fp16.Enabled && c.Bf16.Enabled, "fp16.enabled and bf16.enabled are both true; enable at most one mixed-precision mode",
            "fp16.enabled", "bf16.enabled");
        Check(z.OffloadParam.Enabled && z.Stage != 3, $"zero_optimization.offload_param is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})",
            Stage, "zero_optimization.offload_param.device");
        Check(z.OffloadOptimizer.Enabled && z.Stage == 0, "zero_optimization.offload_optimizer needs ZeRO stage 1, 2 or 3 (zero_optimization.stage is 0)",
            Stage, "zero_optimization.offload_optimizer.device");
        Check(z.OffloadOptimizer.Ratio != 1.0 && z.Stage != 3,
            $"zero_optimization.offload_optimizer.ratio = {z.OffloadOptimizer.Ratio} (partial offload) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})",
            Stage, "zero_optimization.offload_optimizer.ratio");
        Check(c.Fp16.Fp16MasterWeightsAndGrads && z.Stage < 1, "fp16.fp16_master_weights_and_grads needs ZeRO stage ≥ 1 (zero_optimization.stage is 0)",
            Stage, "fp16.fp16_master_weights_and_grads");
        Check(c.Bf16.Bf16MasterWeightsAndGrads && z.Stage < 1, "bf16.bf16_master_weights_and_grads needs ZeRO stage ≥ 1 (zero_optimization.stage is 0)",
            Stage, "bf16.bf16_master_weights_and_grads");
        Check(c.Bf16.Bf16OptimizerStates && (z.Stage < 1 || !c.Bf16.Bf16MasterWeightsAndGrads),
            "bf16.bf16_optimizer_states needs ZeRO stage ≥ 1 and bf16.bf16_master_weights_and_grads = true",
            Stage, "bf16.bf16_optimizer_states", "bf16.bf16_master_weights_and_grads");
        Check(c.GradientAllreduceOp == "sum" && z.Stage == 3,
            "gradient_allreduce_op \"sum\" is incompatible with ZeRO stage 3; use \"mean\" or a lower stage", Stage, "gradient_allreduce_op");
        Check(z.ZeroHpzPartitionSize > 1 && z.Stage != 3,
            $"zero_optimization.zero_hpz_partition_size = {z.ZeroHpzPartitionSize} (ZeRO++ hpZ) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})",
            Stage, "zero_optimization.zero_hpz_partition_size");
        Check(z.ZeroQuantizedWeights && z.Stage != 3,
            $"zero_optimization.zero_quantized_weights = true (ZeRO++ qwZ) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})",
            Stage, "zero_optimization.zero_quantized_weights");
        Check(z.ZeroQuantizedGradients && z.Stage != 3,
            $"zero_optimization.zero_quantized_gradients = true (ZeRO++ qgZ) is only valid with ZeRO stage 3 (zero_optimization.stage is {z.Stage})",
            Stage, "zero_optimization.zero_quantized_gradients");
        // DeepSpeed accepts 0 (ge=0) and real configs use it (Hugging Face's ZeRO-3 test config), so it stays valid,
        // but it makes every bucket as small as the largest parameter: more, smaller reductions.
        if (z.ReduceBucketSize == 0 && !ctx.AnyFailed("zero_optimization.reduce_bucket_size"))
            ctx.Warnings.Add("zero_optimization.reduce_bucket_size is 0: each gradient bucket holds only as many elements as the largest " +
                             "parameter, so gradients are reduced in more, smaller collectives; DeepSpeed's default is 5e8");
    }
}
