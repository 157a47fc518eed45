namespace DeepSpeedSharp.Config.Keys;

public static partial class ConfigKeyTable
{
    private const string Z = "zero_optimization.";
    private const string OO = "zero_optimization.offload_optimizer.";
    private const string OP = "zero_optimization.offload_param.";
    private const string Nvme = "an NVMe-offload setting; device \"nvme\" is rejected, so nothing reads it";

    private static IEnumerable<ConfigKeyEffect> Zero() =>
    [
        Done(Z + "stage", "ZeRO stage 0–3"),
        None(Z + "contiguous_gradients", "gradients always live in one contiguous flat buffer here"),
        None(Z + "reduce_scatter", "ZeRO ≥ 1 always reduce-scatters gradients to their owners; the result is the same as DeepSpeed's all-reduce path"),
        Done(Z + "overlap_comm", "gradient reductions overlap backward on the comm thread"),
        Done(Z + "reduce_bucket_size", "elements per gradient reduction"),
        None(Z + "allgather_partitions", "updated partitions are always all-gathered (false selects per-rank broadcasts in DeepSpeed, with the same result)"),
        Done(Z + "allgather_bucket_size", "elements per parameter all-gather after the step (stages 1–2)"),
        None(Z + "use_multi_rank_bucket_allreduce", "a CUDA bucketing variant of stage 0's all-reduce; buckets are reduced one by one here"),
        Done(Z + "load_from_fp32_weights", "false: after loading a checkpoint, master weights are rebuilt from the 16-bit model weights"),
        None(Z + "elastic_checkpoint", "a legacy stage-1 switch; every checkpoint here loads on any number of ranks"),
        Done(Z + "offload_optimizer.device", "\"cpu\": master weights, gradients and optimizer state in host memory, the CPU Adam; \"nvme\" is rejected"),
        None(OO + "nvme_path", Nvme),
        None(OO + "buffer_count", Nvme),
        Done(OO + "pin_memory", "page-locks host buffers when the compute device is CUDA"),
        None(OO + "pipeline_read", Nvme),
        None(OO + "pipeline_write", Nvme),
        None(OO + "fast_init", "NVMe swap initialisation; device \"nvme\" is rejected"),
        Done(OO + "ratio", "ZeRO-3 partial offload: the fraction of the optimizer state kept on the host"),
        Reject(OO + "super_offload", "SuperOffload is not implemented; set it to false"),
        Done(OO + "cpuadam_cores_perc", "fraction of the host's cores the CPU Adam uses"),
        Done(OP + "device", "\"cpu\" (stage 3): partitioned parameters live in host memory; \"nvme\" is rejected"),
        None(OP + "nvme_path", Nvme),
        None(OP + "buffer_count", Nvme),
        None(OP + "buffer_size", Nvme),
        None(OP + "max_in_cpu", Nvme),
        Done(OP + "pin_memory", "page-locks host buffers when the compute device is CUDA"),
        None(Z + "sub_group_size", "the optimizer step runs over each rank's whole partition (the CPU Adam tiles it itself)"),
        Done(Z + "stage3_prefetch_bucket_size", "elements of upcoming units gathered ahead"),
        Done(Z + "stage3_param_persistence_threshold", "parameters this small stay whole on every rank"),
        Done(Z + "stage3_model_persistence_threshold", "cap on the total elements of persistent (unpartitioned) parameters"),
        Done(Z + "stage3_max_live_parameters", "cap on gathered elements alive at once"),
        Done(Z + "stage3_max_reuse_distance", "gathered parameters reused within this distance stay gathered"),
        Done(Z + "stage3_gather_16bit_weights_on_model_save", "Save16BitModel gathers the full weights"),
        Done(Z + "stage3_linear_fast_path", "not a DeepSpeed key: false recomputes every ZeRO-3 unit in backward, Linear units included (default true)"),
        None(Z + "stage3_module_granularity_threshold", "ZeRO-3 leaf-module grouping for hook overhead; units here are the modules owning parameters"),
        None(Z + "stage3_use_all_reduce_for_fetch_params", "an all-reduce instead of all-gather for fetching parameters; the all-gather gives the same values"),
        None(Z + "stage3_allgather_sequential", "a CUDA-stream ordering hint; gathers run on the comm thread in order"),
        Done(Z + "ignore_unused_parameters", "false: a parameter without gradient is an error naming it"),
        None(Z + "round_robin_gradients", "a CUDA-stream parallelism hint for offloaded gradient copies; copies run on the comm thread"),
        Done(Z + "zero_hpz_partition_size", "ZeRO++ hpZ: a secondary partition per host; backward gathers stay inside the host"),
        Done(Z + "zero_quantized_weights", "ZeRO++ qwZ: the forward all-gather sends block-wise int8 weights"),
        None(Z + "zero_quantized_nontrainable_weights", "frozen parameters are not partitioned here (every rank keeps them whole), so none are gathered"),
        Done(Z + "zero_quantized_gradients", "ZeRO++ qgZ: int8 gradient reduce-scatter in two hops (inside the host, then across hosts)"),
        Reject(Z + "mics_shard_size", "MiCS sharding is not implemented; use -1 (off) or remove it", Above(0)),
        Reject(Z + "mics_hierarchical_params_gather", "MiCS is not implemented; set it to false"),
        None(Z + "memory_efficient_linear", "ZeRO-3's Linear always uses the memory-efficient function (no full weight kept for backward)"),
        None(Z + "override_module_apply", "a Python module.apply patch; not needed in TorchSharp"),
        None(Z + "pipeline_loading_checkpoint", "a Megatron-DeepSpeed loading shortcut for ZeRO-3 pipelines; pipelines here refuse ZeRO-3"),
        None(Z + "log_trace_cache_warnings", "ZeRO-3 trace-cache warnings; the prefetcher here has no trace cache"),
        None(Z + "enable_sanity_checks", "extra ZeRO-3 assertions in DeepSpeed; the checks here always run"),
        None(Z + "legacy_stage1", "DeepSpeed's old stage-1 implementation; there is one stage-1 path"),
        None(Z + "save_muon_momentum_buffer_in_memory", "Muon is rejected as an optimizer type"),
        Reject(Z + "zeropp_loco_param", "ZeRO++ LoCo is not implemented; remove it"),
        Reject(Z + "zenflow", "ZenFlow is not implemented; remove it"),
        None(Z + "leaf_module", "ZeRO-3 leaf modules: units here are the modules owning parameters"),
    ];
}
