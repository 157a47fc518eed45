using DeepSpeedSharp.Config;
using static DeepSpeedSharp.Tests.Config.ConfigTestHelpers;

namespace DeepSpeedSharp.Tests.Config;

public class ConfigValidationTests
{
    [Theory]
    // types and ranges
    [InlineData("""{"zero_optimization": {"stage": "two"}}""", "zero_optimization.stage: expected a ZeRO stage: 0, 1, 2 or 3, got a string \"two\"")]
    [InlineData("""{"zero_optimization": {"stage": 4}}""", "zero_optimization.stage: must be a ZeRO stage: 0, 1, 2 or 3, got 4")]
    [InlineData("""{"zero_optimization": {"stage": 1.5}}""", "zero_optimization.stage: must be a ZeRO stage: 0, 1, 2 or 3, got 1.5")]
    [InlineData("""{"zero_optimization": 3}""", "zero_optimization: expected an object")]
    [InlineData("""{"bf16": {"enabled": "yes"}}""", "bf16.enabled: expected true or false, got a string \"yes\"")]
    [InlineData("""{"zero_optimization": {"reduce_bucket_size": -1}}""", "zero_optimization.reduce_bucket_size: must be an integer ≥ 0, got -1")]
    [InlineData("""{"zero_optimization": {"stage3_max_reuse_distance": -1}}""", "zero_optimization.stage3_max_reuse_distance: must be an integer ≥ 0, got -1")]
    [InlineData("""{"zero_optimization": {"reduce_bucket_size": 1e300}}""", "zero_optimization.reduce_bucket_size: must be an integer between 0 and 9223372036854775807, got 1e300")]
    [InlineData("""{"train_batch_size": 99999999999999999999999}""", "train_batch_size")]
    [InlineData("""{"train_batch_size": 0}""", "train_batch_size: must be a positive integer or \"auto\", got 0")]
    [InlineData("""{"gradient_accumulation_steps": -2}""", "gradient_accumulation_steps: must be a positive integer or \"auto\", got -2")]
    [InlineData("""{"train_batch_size": "8"}""", "train_batch_size: expected a positive integer or \"auto\"")]
    [InlineData("""{"gradient_clipping": -1}""", "gradient_clipping")]
    [InlineData("""{"gradient_allreduce_op": "max"}""", "gradient_allreduce_op: 'max' is not accepted; expected one of 'mean', 'sum'")]
    [InlineData("""{"communication_data_type": "int3"}""", "communication_data_type: 'int3' is not a supported dtype")]
    [InlineData("""{"checkpoint": {"tag_validation": "sometimes"}}""", "checkpoint.tag_validation: 'sometimes' is not accepted")]
    // cross-field
    [InlineData("""{"fp16": {"enabled": true}, "bf16": {"enabled": true}}""", "fp16.enabled and bf16.enabled are both true")]
    [InlineData("""{"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}""", "offload_param is only valid with ZeRO stage 3 (zero_optimization.stage is 2)")]
    [InlineData("""{"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu", "ratio": 0.3}}}""", "ratio = 0.3 (partial offload) is only valid with ZeRO stage 3")]
    [InlineData("""{"zero_optimization": {"stage": 0, "offload_optimizer": {"device": "cpu"}}}""", "offload_optimizer needs ZeRO stage 1, 2 or 3")]
    [InlineData("""{"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "nvme", "nvme_path": "/x"}}}""", "device 'nvme' is not supported by DeepSpeedSharp (only cpu/none)")]
    [InlineData("""{"zero_optimization": {"stage": 3, "offload_param": {"device": "nvme"}}}""", "zero_optimization.offload_param.device: device 'nvme' is not supported")]
    [InlineData("""{"zero_optimization": {"offload_param": {"device": "gpu"}}}""", "'gpu' is not accepted; expected one of 'none', 'cpu', 'nvme'")]
    [InlineData("""{"fp16": {"enabled": true, "fp16_master_weights_and_grads": true}}""", "fp16.fp16_master_weights_and_grads needs ZeRO stage ≥ 1")]
    [InlineData("""{"bf16": {"enabled": true, "bf16_master_weights_and_grads": true}}""", "bf16.bf16_master_weights_and_grads needs ZeRO stage ≥ 1")]
    [InlineData("""{"zero_optimization": {"stage": 1}, "bf16": {"enabled": true, "bf16_optimizer_states": true}}""", "bf16.bf16_optimizer_states needs")]
    [InlineData("""{"gradient_allreduce_op": "sum", "zero_optimization": {"stage": 3}}""", "gradient_allreduce_op \"sum\" is incompatible with ZeRO stage 3")]
    // optimizer / scheduler per type
    [InlineData("""{"optimizer": {"type": "Lamb", "params": {"lr": 0.1}}}""", "optimizer.type 'Lamb' is a DeepSpeed optimizer DeepSpeedSharp does not implement; supported: 'Adam', 'AdamW', 'SGD'")]
    [InlineData("""{"optimizer": {"type": "RMSprop"}}""", "optimizer.type 'RMSprop' is not an optimizer DeepSpeedSharp knows")]
    [InlineData("""{"optimizer": {"type": "Adam", "params": {"momentum": 0.9}}}""", "unknown key 'momentum' in optimizer.params")]
    [InlineData("""{"optimizer": {"type": "SGD", "params": {"betas": [0.9, 0.99]}}}""", "unknown key 'betas' in optimizer.params")]
    [InlineData("""{"optimizer": {"type": "Adam", "params": {"betas": [0.9]}}}""", "optimizer.params.betas: expected a list of two numbers")]
    [InlineData("""{"optimizer": {"type": "Adam", "params": {"weight_decai": 0.1}}}""", "unknown key 'weight_decai' in optimizer.params; did you mean 'weight_decay'?")]
    [InlineData("""{"scheduler": {"type": "WarmupDecayLR", "params": {}}}""", "scheduler.params.total_num_steps is required for WarmupDecayLR")]
    [InlineData("""{"scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": "auto"}}}""", "cannot be \"auto\"")]
    [InlineData("""{"scheduler": {"type": "warmuplr"}}""", "did you mean 'WarmupLR'?")]
    [InlineData("""{"scheduler": {"type": "StepLR"}}""", "scheduler.type 'StepLR' is not a scheduler DeepSpeedSharp implements")]
    [InlineData("""{"scheduler": {"type": "WarmupLR", "params": {"total_num_steps": 10}}}""", "unknown key 'total_num_steps' in scheduler.params")]
    [InlineData("""{"scheduler": {"type": "WarmupLR", "params": {"warmup_type": "cubic"}}}""", "scheduler.params.warmup_type: 'cubic' is not accepted; expected one of 'log', 'linear'")]
    [InlineData("""{"scheduler": {"type": "OneCycle", "params": {"cycle_max_lr": 1}}}""", "scheduler.params.cycle_min_lr is required for OneCycle")]
    // features rejected because ignoring them would change training
    [InlineData("""{"zero_optimization": {"stage": 2, "zero_quantized_weights": true}}""", "zero_optimization.zero_quantized_weights = true (ZeRO++ qwZ) is only valid with ZeRO stage 3 (zero_optimization.stage is 2)")]
    [InlineData("""{"zero_optimization": {"stage": 1, "zero_quantized_gradients": true}}""", "zero_optimization.zero_quantized_gradients = true (ZeRO++ qgZ) is only valid with ZeRO stage 3 (zero_optimization.stage is 1)")]
    [InlineData("""{"zero_optimization": {"stage": 2, "zero_hpz_partition_size": 2}}""", "zero_optimization.zero_hpz_partition_size = 2 (ZeRO++ hpZ) is only valid with ZeRO stage 3")]
    [InlineData("""{"fp16": {"enabled": true, "auto_cast": true}}""", "'fp16.auto_cast' = true is not supported")]
    [InlineData("""{"curriculum_learning": {"enabled": true}}""", "curriculum learning is not implemented")]
    [InlineData("""{"progressive_layer_drop": {"enabled": true}}""", "'progressive_layer_drop' = {\"enabled\":true} is not supported")]
    [InlineData("""{"elasticity": {"enabled": true, "micro_batch_sizes": [2, "4"]}}""", "elasticity.micro_batch_sizes[1]")]
    [InlineData("""{"amp": {"enabled": true}}""", "Apex AMP is not available")]
    [InlineData("""{"compression_training": {"weight_quantization": {}}}""", "compression training is not implemented")]
    [InlineData("""{"sparse_attention": {"mode": "fixed"}}""", "sparse attention is not implemented")]
    [InlineData("""{"sequence_parallel_size": 2}""", "Ulysses sequence parallelism is not implemented")]
    public void InvalidConfigsAreRejectedWithAClearMessage(string json, string expected) => Assert.Contains(expected, ErrorOf(json));

    [Theory]
    [InlineData("""{"zero_optimization": {"stage3_param_persitence_threshold": 1}}""", "unknown key 'stage3_param_persitence_threshold' in zero_optimization; did you mean 'stage3_param_persistence_threshold'?")]
    [InlineData("""{"zero_optimization": {"stage": 3, "offload_param": {"pin_memroy": true}}}""", "unknown key 'pin_memroy' in zero_optimization.offload_param; did you mean 'pin_memory'?")]
    [InlineData("""{"zero_optimization": {"cpu_offload_params": true}}""", "did you mean 'cpu_offload_param'?")]
    [InlineData("""{"train_batch_szie": 8}""", "unknown key 'train_batch_szie' at the top level; did you mean 'train_batch_size'?")]
    [InlineData("""{"bf16": {"enable": true}}""", "unknown key 'enable' in bf16; did you mean 'enabled'?")]
    [InlineData("""{"activation_checkpointing": {"partition_activation": true}}""", "did you mean 'partition_activations'?")]
    [InlineData("""{"flops_profiler": {"profile_steps": 2}}""", "did you mean 'profile_step'?")]
    [InlineData("""{"timers": {"throughput": {"synchronised": false}}}""", "unknown key 'synchronised' in timers.throughput; did you mean 'synchronized'?")]
    [InlineData("""{"pipeline": {"partiton": "uniform"}}""", "did you mean 'partition'?")]
    [InlineData("""{"aio": {"queue_dept": 4}}""", "did you mean 'queue_depth'?")]
    [InlineData("""{"checkpoint": {"parallel_write": {"pipeline_stages": true}}}""", "in checkpoint.parallel_write; did you mean 'pipeline_stage'?")]
    [InlineData("""{"data_types": {"grad_acum_dtype": "fp32"}}""", "did you mean 'grad_accum_dtype'?")]
    [InlineData("""{"comms_logger": {"prof_al": true}}""", "did you mean 'prof_all'?")]
    [InlineData("""{"wandb": {"projekt": "x"}}""", "did you mean 'project'?")]
    [InlineData("""{"cuda_visible_devices": "0"}""", "unknown key 'cuda_visible_devices' at the top level")]
    public void UnknownKeysAreRejectedInEverySectionWithASuggestion(string json, string expected) => Assert.Contains(expected, ErrorOf(json));

    [Fact]
    public void DisabledUnsupportedFeaturesAreAccepted()
    {
        var c = DeepSpeedConfig.FromJson("""
            {"curriculum_learning": {"enabled": false}, "amp": {"enabled": false}, "elasticity": {"enabled": false},
             "zero_optimization": {"zero_quantized_weights": false}, "fp16": {"auto_cast": false}, "compile": {"enabled": false}}
            """);
        Assert.Empty(c.Warnings);
    }

    [Fact]
    public void KeysWithoutEffectAreListedWithTheirReasons()
    {
        var c = DeepSpeedConfig.FromJson("""
            {"memory_breakdown": true, "tensorboard": {"enabled": true, "output_path": "/tmp/tb"}, "wandb": {"enabled": true},
             "aio": {"block_size": 4096}, "autotuning": {"enabled": true}, "dump_state": true,
             "zero_optimization": {"stage": 3, "memory_efficient_linear": false, "contiguous_gradients": true}}
            """);
        Assert.Empty(c.Warnings);
        var keys = c.NoEffectKeys.Select(k => k.Key).ToList();
        Assert.Equal(["wandb.enabled", "aio.block_size", "autotuning", "dump_state", "zero_optimization.memory_efficient_linear"], keys);
        Assert.All(c.NoEffectKeys, k => Assert.False(string.IsNullOrWhiteSpace(k.Reason)));
        Assert.Contains("no .NET client", c.NoEffectKeys[0].Reason);
        Assert.True(c.Tensorboard.Enabled); // implemented by the monitoring component
        Assert.Equal("/tmp/tb", c.Tensorboard.OutputPath);
        Assert.True(c.MemoryBreakdown); // implemented: a memory line in the progress report
    }

    [Theory]
    [InlineData("""{"zero_optimization": {"mics_shard_size": 4}}""", "zero_optimization.mics_shard_size", "MiCS")]
    [InlineData("""{"sequence_parallel_size": 2}""", "sequence_parallel_size", "Ulysses")]
    [InlineData("""{"managed_gradient_accumulation": false}""", "managed_gradient_accumulation", "caller-managed")]
    [InlineData("""{"fp16": {"enabled": true, "auto_cast": true}}""", "fp16.auto_cast", "auto-casting")]
    [InlineData("""{"amp": {"enabled": true}}""", "amp", "Apex")]
    public void RejectedKeysNameTheKeyTheValueAndWhatToDo(string json, string key, string reason)
    {
        var e = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson(json));
        Assert.StartsWith($"'{key}' = ", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("""{"zero_optimization": {"zero_hpz_partition_size": 1, "mics_shard_size": -1, "mics_hierarchical_params_gather": false}}""")]
    [InlineData("""{"sequence_parallel_size": 1, "managed_gradient_accumulation": true}""")]
    public void RejectedKeysAtTheirDefaultAreAccepted(string json) => Assert.Empty(DeepSpeedConfig.FromJson(json).NoEffectKeys);

    [Theory]
    [InlineData("allgather_bucket_size")]
    [InlineData("sub_group_size")]
    public void ZeroAllGatherBucketAndSubGroupSizesAreErrors(string key)
    {
        var e = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson("{\"zero_optimization\": {\"" + key + "\": 0}}"));
        Assert.Equal($"zero_optimization.{key}: must be a positive integer, got 0", e.Message);
    }

    [Fact]
    public void MaxGradNormInOptimizerParamsIsWarnedAndIgnored()
    {
        var c = DeepSpeedConfig.FromJson("""{"optimizer": {"type": "Adam", "params": {"lr": 0.1, "max_grad_norm": 1.0}}}""");
        Assert.Contains(c.Warnings, w => w.Contains("optimizer.params.max_grad_norm") && w.Contains("gradient_clipping"));
        Assert.Equal(0.0, c.GradientClipping);
        Assert.DoesNotContain("max_grad_norm", c.ToJson());
    }

    [Fact]
    public void UnderscoreKeysAreTreatedAsCommentedOut()
    {
        var c = DeepSpeedConfig.FromJson("""{"_comment": "hi", "zero_optimization": {"stage": 3, "_stage3_param_persistence_threshold": 1}}""");
        Assert.Equal(100_000, c.ZeroOptimization.Stage3ParamPersistenceThreshold);
        Assert.Contains(c.Warnings, w => w.Contains("_comment") && w.Contains("zero_optimization._stage3_param_persistence_threshold"));
    }

    [Fact]
    public void NumbersWrittenInExponentFormAreIntegers()
    {
        var z = DeepSpeedConfig.FromJson("""{"zero_optimization": {"reduce_bucket_size": 2e8, "stage3_max_live_parameters": 1e9}}""").ZeroOptimization;
        Assert.Equal(200_000_000, z.ReduceBucketSize);
        Assert.Equal(1_000_000_000, z.Stage3MaxLiveParameters);
    }

    [Fact]
    public void DtypeSpellingsAreNormalised()
    {
        var c = DeepSpeedConfig.FromJson("""{"communication_data_type": "bfloat16", "data_types": {"grad_accum_dtype": "float", "param_dtype": "half", "buffer_dtype": "BF16"}}""");
        Assert.Equal("bf16", c.CommunicationDataType);
        Assert.Equal(new DataTypesConfig { GradAccumDtype = "fp32", ParamDtype = "fp16", BufferDtype = "bf16" }, c.DataTypes);
    }
}
