
namespace DeepSpeedSharp.Config.Schema;

/// <summary>Schema tables of <c>zero_optimization</c> and its offload sub-sections (DeepSpeed's <c>runtime/zero/config.py</c>).</summary>
internal static class ZeroSchemas
{
    private static readonly string[] Devices = ["none", "cpu", "nvme"];

    private static void CheckDevice(string device, string path)
    {
        if (device == "nvme")
            throw new DeepSpeedConfigException($"{path}: device 'nvme' is not supported by DeepSpeedSharp (only cpu/none)");
    }

    public static readonly SectionSchema<OffloadOptimizerConfig> OffloadOptimizer = new SectionSchema<OffloadOptimizerConfig>(() => new())
        .Add(
            Fields<OffloadOptimizerConfig>.Of("device", Kinds.OneOf(Devices), c => c.Device, (c, v) => c with { Device = v }, CheckDevice),
            Fields<OffloadOptimizerConfig>.Of("nvme_path", Kinds.OptionalString, c => c.NvmePath, (c, v) => c with { NvmePath = v }),
            Fields<OffloadOptimizerConfig>.Of("buffer_count", Kinds.Int(min: 0), c => c.BufferCount, (c, v) => c with { BufferCount = v }),
            Fields<OffloadOptimizerConfig>.Of("pin_memory", Kinds.Bool, c => c.PinMemory, (c, v) => c with { PinMemory = v }),
            Fields<OffloadOptimizerConfig>.Of("pipeline_read", Kinds.Bool, c => c.PipelineRead, (c, v) => c with { PipelineRead = v }),
            Fields<OffloadOptimizerConfig>.Of("pipeline_write", Kinds.Bool, c => c.PipelineWrite, (c, v) => c with { PipelineWrite = v }),
            Fields<OffloadOptimizerConfig>.Of("fast_init", Kinds.Bool, c => c.FastInit, (c, v) => c with { FastInit = v }),
            Fields<OffloadOptimizerConfig>.Of("ratio", Kinds.Double(0, 1), c => c.Ratio, (c, v) => c with { Ratio = v }),
            Fields<OffloadOptimizerConfig>.Of("super_offload", Kinds.Bool, c => c.SuperOffload, (c, v) => c with { SuperOffload = v }),
            Fields<OffloadOptimizerConfig>.Of("cpuadam_cores_perc", Kinds.Double(0, 1), c => c.CpuadamCoresPerc, (c, v) => c with { CpuadamCoresPerc = v }));

    public static readonly SectionSchema<OffloadParamConfig> OffloadParam = new SectionSchema<OffloadParamConfig>(() => new())
        .Add(
            Fields<OffloadParamConfig>.Of("device", Kinds.OneOf(Devices), c => c.Device, (c, v) => c with { Device = v }, CheckDevice),
            Fields<OffloadParamConfig>.Of("nvme_path", Kinds.OptionalString, c => c.NvmePath, (c, v) => c with { NvmePath = v }),
            Fields<OffloadParamConfig>.Of("buffer_count", Kinds.Int(min: 0), c => c.BufferCount, (c, v) => c with { BufferCount = v }),
            Fields<OffloadParamConfig>.Of("buffer_size", Kinds.Long(min: 0), c => c.BufferSize, (c, v) => c with { BufferSize = v }),
            Fields<OffloadParamConfig>.Of("max_in_cpu", Kinds.Long(min: 0), c => c.MaxInCpu, (c, v) => c with { MaxInCpu = v }),
            Fields<OffloadParamConfig>.Of("pin_memory", Kinds.Bool, c => c.PinMemory, (c, v) => c with { PinMemory = v }));

    public static readonly SectionSchema<ZeroConfig> Zero = BuildZero();

    private static SectionSchema<ZeroConfig> BuildZero()
    {
        var s = new SectionSchema<ZeroConfig>(() => new());
        s.Add(
            Fields<ZeroConfig>.Of("stage", Kinds.Int(0, 3, text: "a ZeRO stage: 0, 1, 2 or 3"), c => c.Stage, (c, v) => c with { Stage = v }),
            Fields<ZeroConfig>.Of("contiguous_gradients", Kinds.Bool, c => c.ContiguousGradients, (c, v) => c with { ContiguousGradients = v }),
            Fields<ZeroConfig>.Of("reduce_scatter", Kinds.Bool, c => c.ReduceScatter, (c, v) => c with { ReduceScatter = v }),
            Fields<ZeroConfig>.Of("overlap_comm", Kinds.Bool, c => c.OverlapComm, (c, v) => c with { OverlapComm = v }),
            Fields<ZeroConfig>.Of("reduce_bucket_size", Kinds.Long(min: 0), c => c.ReduceBucketSize, (c, v) => c with { ReduceBucketSize = v }),
            Fields<ZeroConfig>.Of("allgather_partitions", Kinds.Bool, c => c.AllgatherPartitions, (c, v) => c with { AllgatherPartitions = v }),
            Fields<ZeroConfig>.Of("allgather_bucket_size", Kinds.Long(min: 1), c => c.AllgatherBucketSize, (c, v) => c with { AllgatherBucketSize = v }),
            Fields<ZeroConfig>.Of("use_multi_rank_bucket_allreduce", Kinds.Bool, c => c.UseMultiRankBucketAllreduce, (c, v) => c with { UseMultiRankBucketAllreduce = v }),
            Fields<ZeroConfig>.Of("load_from_fp32_weights", Kinds.Bool, c => c.LoadFromFp32Weights, (c, v) => c with { LoadFromFp32Weights = v }),
            Fields<ZeroConfig>.Of("elastic_checkpoint", Kinds.Bool, c => c.ElasticCheckpoint, (c, v) => c with { ElasticCheckpoint = v }),
            Fields<ZeroConfig>.Section("offload_optimizer", OffloadOptimizer, c => c.OffloadOptimizer, (c, v) => c with { OffloadOptimizer = v }),
            Fields<ZeroConfig>.Section("offload_param", OffloadParam, c => c.OffloadParam, (c, v) => c with { OffloadParam = v }),
            Fields<ZeroConfig>.Of("sub_group_size", Kinds.Long(min: 1), c => c.SubGroupSize, (c, v) => c with { SubGroupSize = v }),
            Fields<ZeroConfig>.Of("stage3_prefetch_bucket_size", Kinds.Long(min: 0), c => c.Stage3PrefetchBucketSize, (c, v) => c with { Stage3PrefetchBucketSize = v }).Alias("prefetch_bucket_size"),
            Fields<ZeroConfig>.Of("stage3_param_persistence_threshold", Kinds.Long(min: 0), c => c.Stage3ParamPersistenceThreshold, (c, v) => c with { Stage3ParamPersistenceThreshold = v }).Alias("param_persistence_threshold"),
            Fields<ZeroConfig>.Of("stage3_model_persistence_threshold", Kinds.Long(min: 0), c => c.Stage3ModelPersistenceThreshold, (c, v) => c with { Stage3ModelPersistenceThreshold = v }).Alias("model_persistence_threshold"),
            Fields<ZeroConfig>.Of("stage3_max_live_parameters", Kinds.Long(min: 0), c => c.Stage3MaxLiveParameters, (c, v) => c with { Stage3MaxLiveParameters = v }).Alias("max_live_parameters"),
            Fields<ZeroConfig>.Of("stage3_max_reuse_distance", Kinds.Long(min: 0), c => c.Stage3MaxReuseDistance, (c, v) => c with { Stage3MaxReuseDistance = v }).Alias("max_reuse_distance"),
            Fields<ZeroConfig>.Of("stage3_gather_16bit_weights_on_model_save", Kinds.Bool, c => c.Stage3Gather16BitWeightsOnModelSave, (c, v) => c with { Stage3Gather16BitWeightsOnModelSave = v })
                .Alias("gather_16bit_weights_on_model_save").Deprecated("stage3_gather_fp16_weights_on_model_save"),
            Fields<ZeroConfig>.Of("stage3_linear_fast_path", Kinds.Bool, c => c.Stage3LinearFastPath, (c, v) => c with { Stage3LinearFastPath = v }),
            Fields<ZeroConfig>.Of("stage3_module_granularity_threshold", Kinds.Long(min: 0), c => c.Stage3ModuleGranularityThreshold, (c, v) => c with { Stage3ModuleGranularityThreshold = v }).Alias("module_granularity_threshold"),
            Fields<ZeroConfig>.Of("stage3_use_all_reduce_for_fetch_params", Kinds.Bool, c => c.Stage3UseAllReduceForFetchParams, (c, v) => c with { Stage3UseAllReduceForFetchParams = v }).Alias("use_all_reduce_for_fetch_params"),
            Fields<ZeroConfig>.Of("stage3_allgather_sequential", Kinds.Bool, c => c.Stage3AllgatherSequential, (c, v) => c with { Stage3AllgatherSequential = v }).Alias("allgather_sequential"),
            Fields<ZeroConfig>.Of("ignore_unused_parameters", Kinds.Bool, c => c.IgnoreUnusedParameters, (c, v) => c with { IgnoreUnusedParameters = v }),
            Fields<ZeroConfig>.Of("round_robin_gradients", Kinds.Bool, c => c.RoundRobinGradients, (c, v) => c with { RoundRobinGradients = v }),
            Fields<ZeroConfig>.Of("zero_hpz_partition_size", Kinds.Int(min: 1), c => c.ZeroHpzPartitionSize, (c, v) => c with { ZeroHpzPartitionSize = v }),
            Fields<ZeroConfig>.Of("zero_quantized_weights", Kinds.Bool, c => c.ZeroQuantizedWeights, (c, v) => c with { ZeroQuantizedWeights = v }),
            Fields<ZeroConfig>.Of("zero_quantized_nontrainable_weights", Kinds.Bool, c => c.ZeroQuantizedNontrainableWeights, (c, v) => c with { ZeroQuantizedNontrainableWeights = v }),
            Fields<ZeroConfig>.Of("zero_quantized_gradients", Kinds.Bool, c => c.ZeroQuantizedGradients, (c, v) => c with { ZeroQuantizedGradients = v }),
            Fields<ZeroConfig>.Of("mics_shard_size", Kinds.Int(min: -1), c => c.MicsShardSize, (c, v) => c with { MicsShardSize = v }),
            Fields<ZeroConfig>.Of("mics_hierarchical_params_gather", Kinds.Bool, c => c.MicsHierarchicalParamsGather, (c, v) => c with { MicsHierarchicalParamsGather = v }),
            Fields<ZeroConfig>.Of("memory_efficient_linear", Kinds.Bool, c => c.MemoryEfficientLinear, (c, v) => c with { MemoryEfficientLinear = v }),
            Fields<ZeroConfig>.Of("override_module_apply", Kinds.Bool, c => c.OverrideModuleApply, (c, v) => c with { OverrideModuleApply = v }),
            Fields<ZeroConfig>.Of("pipeline_loading_checkpoint", Kinds.Bool, c => c.PipelineLoadingCheckpoint, (c, v) => c with { PipelineLoadingCheckpoint = v }),
            Fields<ZeroConfig>.Of("log_trace_cache_warnings", Kinds.Bool, c => c.LogTraceCacheWarnings, (c, v) => c with { LogTraceCacheWarnings = v }),
            Fields<ZeroConfig>.Of("enable_sanity_checks", Kinds.Bool, c => c.EnableSanityChecks, (c, v) => c with { EnableSanityChecks = v }),
            Fields<ZeroConfig>.Of("legacy_stage1", Kinds.Bool, c => c.LegacyStage1, (c, v) => c with { LegacyStage1 = v }),
            Fields<ZeroConfig>.Of("save_muon_momentum_buffer_in_memory", Kinds.Bool, c => c.SaveMuonMomentumBufferInMemory, (c, v) => c with { SaveMuonMomentumBufferInMemory = v }));
        // Deprecated keys are migrated away before the schema reads the section; listed here for "did you mean".
        s.SuggestAlso("cpu_offload", "cpu_offload_param", "cpu_offload_use_pin_memory");
        return s;
    }
}
