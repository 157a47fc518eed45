namespace DeepSpeedSharp.Config;

/// <summary>
/// <c>zero_optimization</c>: ZeRO (Zero Redundancy Optimizer) settings. Defaults are DeepSpeed's
/// (<c>deepspeed/runtime/zero/config.py</c>). Sizes are in elements, not bytes.
/// </summary>
public sealed record ZeroConfig
{
    private readonly bool? _overlapComm;

    /// <summary><c>stage</c>: 0 = disabled, 1 = optimizer states, 2 = + gradients, 3 = + parameters.</summary>
    public int Stage { get; init; }
    /// <summary><c>contiguous_gradients</c>: copy gradients into a contiguous buffer during backward.</summary>
    public bool ContiguousGradients { get; init; } = true;
    /// <summary><c>reduce_scatter</c>: reduce/reduce-scatter gradients instead of all-reduce.</summary>
    public bool ReduceScatter { get; init; } = true;
    /// <summary><c>overlap_comm</c>: overlap gradient reduction with backward. When not set: true for stage 3, false otherwise.</summary>
    public bool OverlapComm { get => _overlapComm ?? Stage == 3; init => _overlapComm = value; }
    /// <summary>True when <c>overlap_comm</c> was given explicitly (rather than derived from the stage).</summary>
    public bool OverlapCommIsExplicit => _overlapComm.HasValue;
    /// <summary><c>reduce_bucket_size</c>: elements reduced at a time.</summary>
    public long ReduceBucketSize { get; init; } = 500_000_000;
    /// <summary><c>allgather_partitions</c>: all-gather updated partitions (vs. broadcasts) after the step.</summary>
    public bool AllgatherPartitions { get; init; } = true;
    /// <summary><c>allgather_bucket_size</c>: elements all-gathered at a time.</summary>
    public long AllgatherBucketSize { get; init; } = 500_000_000;
    /// <summary><c>use_multi_rank_bucket_allreduce</c>.</summary>
    public bool UseMultiRankBucketAllreduce { get; init; } = true;
    /// <summary><c>load_from_fp32_weights</c>: initialise master weights from the fp32 copy in the checkpoint.</summary>
    public bool LoadFromFp32Weights { get; init; } = true;
    /// <summary><c>elastic_checkpoint</c> (legacy).</summary>
    public bool ElasticCheckpoint { get; init; }
    /// <summary><c>offload_optimizer</c>: optimizer-state offload (ZeRO-Offload).</summary>
    public OffloadOptimizerConfig OffloadOptimizer { get; init; } = new();
    /// <summary><c>offload_param</c>: parameter offload (stage 3 only).</summary>
    public OffloadParamConfig OffloadParam { get; init; } = new();
    /// <summary><c>sub_group_size</c>: tile size of the optimizer step.</summary>
    public long SubGroupSize { get; init; } = 1_000_000_000;
    /// <summary><c>stage3_prefetch_bucket_size</c> (alias <c>prefetch_bucket_size</c>).</summary>
    public long Stage3PrefetchBucketSize { get; init; } = 50_000_000;
    /// <summary><c>stage3_param_persistence_threshold</c> (alias <c>param_persistence_threshold</c>): smaller parameters are not partitioned.</summary>
    public long Stage3ParamPersistenceThreshold { get; init; } = 100_000;
    /// <summary><c>stage3_model_persistence_threshold</c> (alias <c>model_persistence_threshold</c>).</summary>
    public long Stage3ModelPersistenceThreshold { get; init; } = long.MaxValue;
    /// <summary><c>stage3_max_live_parameters</c> (alias <c>max_live_parameters</c>).</summary>
    public long Stage3MaxLiveParameters { get; init; } = 1_000_000_000;
    /// <summary><c>stage3_max_reuse_distance</c> (alias <c>max_reuse_distance</c>); must be ≥ 0.</summary>
    public long Stage3MaxReuseDistance { get; init; } = 1_000_000_000;
    /// <summary><c>stage3_gather_16bit_weights_on_model_save</c> (alias <c>gather_16bit_weights_on_model_save</c>; deprecated <c>stage3_gather_fp16_weights_on_model_save</c>).</summary>
    public bool Stage3Gather16BitWeightsOnModelSave { get; init; }
    /// <summary><c>stage3_linear_fast_path</c> (not a DeepSpeed key; default true): Linear units keep their input and compute
    /// their gradients in backward without re-running forward; false recomputes every unit (to check the fast path).</summary>
    public bool Stage3LinearFastPath { get; init; } = true;
    /// <summary><c>stage3_module_granularity_threshold</c> (alias <c>module_granularity_threshold</c>).</summary>
    public long Stage3ModuleGranularityThreshold { get; init; }
    /// <summary><c>stage3_use_all_reduce_for_fetch_params</c> (alias <c>use_all_reduce_for_fetch_params</c>).</summary>
    public bool Stage3UseAllReduceForFetchParams { get; init; }
    /// <summary><c>stage3_allgather_sequential</c> (alias <c>allgather_sequential</c>).</summary>
    public bool Stage3AllgatherSequential { get; init; }
    /// <summary><c>ignore_unused_parameters</c> (stage 2).</summary>
    public bool IgnoreUnusedParameters { get; init; } = true;
    /// <summary><c>round_robin_gradients</c>.</summary>
    public bool RoundRobinGradients { get; init; }
    /// <summary><c>zero_hpz_partition_size</c>: ZeRO++ hpZ secondary partition group size (1 = off).</summary>
    public int ZeroHpzPartitionSize { get; init; } = 1;
    /// <summary><c>zero_quantized_weights</c> (ZeRO++ qwZ: int8 weight all-gather).</summary>
    public bool ZeroQuantizedWeights { get; init; }
    /// <summary><c>zero_quantized_nontrainable_weights</c> (no effect: frozen parameters are not partitioned).</summary>
    public bool ZeroQuantizedNontrainableWeights { get; init; }
    /// <summary><c>zero_quantized_gradients</c> (ZeRO++ qgZ: int8 hierarchical gradient reduce-scatter).</summary>
    public bool ZeroQuantizedGradients { get; init; }
    /// <summary><c>mics_shard_size</c> (-1 = off; rejected otherwise).</summary>
    public int MicsShardSize { get; init; } = -1;
    /// <summary><c>mics_hierarchical_params_gather</c>.</summary>
    public bool MicsHierarchicalParamsGather { get; init; }
    /// <summary><c>memory_efficient_linear</c> (stage 3).</summary>
    public bool MemoryEfficientLinear { get; init; } = true;
    /// <summary><c>override_module_apply</c> (stage 3).</summary>
    public bool OverrideModuleApply { get; init; } = true;
    /// <summary><c>pipeline_loading_checkpoint</c> (stage 3).</summary>
    public bool PipelineLoadingCheckpoint { get; init; }
    /// <summary><c>log_trace_cache_warnings</c>.</summary>
    public bool LogTraceCacheWarnings { get; init; }
    /// <summary><c>enable_sanity_checks</c>.</summary>
    public bool EnableSanityChecks { get; init; }
    /// <summary><c>legacy_stage1</c>.</summary>
    public bool LegacyStage1 { get; init; }
    /// <summary><c>save_muon_momentum_buffer_in_memory</c>.</summary>
    public bool SaveMuonMomentumBufferInMemory { get; init; }
}

/// <summary><c>zero_optimization.offload_optimizer</c>. Only <c>device</c> "none" and "cpu" are supported by DeepSpeedSharp.</summary>
public sealed record OffloadOptimizerConfig
{
    /// <summary><c>device</c>: "none" or "cpu" ("nvme" is rejected).</summary>
    public string Device { get; init; } = "none";
    /// <summary><c>nvme_path</c> (kept for round-tripping; NVMe is not supported).</summary>
    public string? NvmePath { get; init; }
    /// <summary><c>buffer_count</c>.</summary>
    public int BufferCount { get; init; } = 4;
    /// <summary><c>pin_memory</c>: page-locked host buffers.</summary>
    public bool PinMemory { get; init; } = true;
    /// <summary><c>pipeline_read</c>.</summary>
    public bool PipelineRead { get; init; }
    /// <summary><c>pipeline_write</c>.</summary>
    public bool PipelineWrite { get; init; }
    /// <summary><c>fast_init</c>.</summary>
    public bool FastInit { get; init; }
    /// <summary><c>ratio</c>: fraction of the optimizer offloaded (≠ 1 only with stage 3).</summary>
    public double Ratio { get; init; } = 1.0;
    /// <summary><c>super_offload</c>.</summary>
    public bool SuperOffload { get; init; }
    /// <summary><c>cpuadam_cores_perc</c>: fraction of cores the CPU Adam may use.</summary>
    public double CpuadamCoresPerc { get; init; } = 0.8;
    /// <summary>True when the optimizer state lives on the CPU.</summary>
    public bool Enabled => Device == "cpu";
}

/// <summary><c>zero_optimization.offload_param</c> (stage 3 only).</summary>
public sealed record OffloadParamConfig
{
    /// <summary><c>device</c>: "none" or "cpu" ("nvme" is rejected).</summary>
    public string Device { get; init; } = "none";
    /// <summary><c>nvme_path</c> (kept for round-tripping; NVMe is not supported).</summary>
    public string? NvmePath { get; init; }
    /// <summary><c>buffer_count</c>.</summary>
    public int BufferCount { get; init; } = 5;
    /// <summary><c>buffer_size</c> (elements).</summary>
    public long BufferSize { get; init; } = 100_000_000;
    /// <summary><c>max_in_cpu</c> (elements).</summary>
    public long MaxInCpu { get; init; } = 1_000_000_000;
    /// <summary><c>pin_memory</c>.</summary>
    public bool PinMemory { get; init; } = true;
    /// <summary>True when parameters are offloaded to the CPU.</summary>
    public bool Enabled => Device == "cpu";
}
