namespace DeepSpeedSharp.Config;

/// <summary><c>pipeline</c>: pipeline-parallel options (DeepSpeed merges the section over these defaults).</summary>
public sealed record PipelineConfig
{
    /// <summary><c>stages</c>: "auto" or a number (kept as text, as DeepSpeed does).</summary>
    public string Stages { get; init; } = "auto";
    /// <summary><c>partition</c>: "best", "parameters", "uniform", "type:REGEX".</summary>
    public string Partition { get; init; } = "best";
    /// <summary><c>seed_layers</c>.</summary>
    public bool SeedLayers { get; init; }
    /// <summary><c>activation_checkpoint_interval</c>.</summary>
    public int ActivationCheckpointInterval { get; init; }
    /// <summary><c>pipe_partitioned</c>.</summary>
    public bool PipePartitioned { get; init; } = true;
    /// <summary><c>grad_partitioned</c>.</summary>
    public bool GradPartitioned { get; init; } = true;
    /// <summary><c>run_ahead_micro_batches</c> (not a DeepSpeed key): extra micro-batches each stage runs ahead of the next
    /// in the 1F1B schedule, which absorbs stages' speed variations at the price of that many more activations held per
    /// later stage; 0 (the default) is DeepSpeed's schedule.</summary>
    public int RunAheadMicroBatches { get; init; }
}

/// <summary><c>activation_checkpointing</c>. The config alone changes nothing: model code must call the checkpoint function.</summary>
public sealed record ActivationCheckpointingConfig
{
    /// <summary><c>partition_activations</c>.</summary>
    public bool PartitionActivations { get; init; }
    /// <summary><c>cpu_checkpointing</c> (only with partition_activations).</summary>
    public bool CpuCheckpointing { get; init; }
    /// <summary><c>contiguous_memory_optimization</c> (needs number_checkpoints).</summary>
    public bool ContiguousMemoryOptimization { get; init; }
    /// <summary><c>number_checkpoints</c>.</summary>
    public int? NumberCheckpoints { get; init; }
    /// <summary><c>synchronize_checkpoint_boundary</c>.</summary>
    public bool SynchronizeCheckpointBoundary { get; init; }
    /// <summary><c>profile</c>.</summary>
    public bool Profile { get; init; }
}

/// <summary><c>flops_profiler</c>.</summary>
public sealed record FlopsProfilerConfig
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>recompute_fwd_factor</c>.</summary>
    public double RecomputeFwdFactor { get; init; }
    /// <summary><c>profile_step</c>.</summary>
    public int ProfileStep { get; init; } = 1;
    /// <summary><c>module_depth</c> (-1 = all).</summary>
    public int ModuleDepth { get; init; } = -1;
    /// <summary><c>top_modules</c>.</summary>
    public int TopModules { get; init; } = 1;
    /// <summary><c>detailed</c>.</summary>
    public bool Detailed { get; init; } = true;
    /// <summary><c>output_file</c> (null = stdout).</summary>
    public string? OutputFile { get; init; }
    /// <summary><c>peak_tflops</c> (not a DeepSpeed key): one rank's peak TFLOP/s, for the report's MFU line (null: not reported).</summary>
    public double? PeakTflops { get; init; }
}

/// <summary><c>comms_logger</c>.</summary>
public sealed record CommsLoggerConfig
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>verbose</c>.</summary>
    public bool Verbose { get; init; }
    /// <summary><c>prof_all</c>.</summary>
    public bool ProfAll { get; init; } = true;
    /// <summary><c>debug</c>.</summary>
    public bool Debug { get; init; }
    /// <summary><c>prof_ops</c>: collective names to profile when prof_all is false.</summary>
    public IReadOnlyList<string> ProfOps { get; init; } = [];

    /// <inheritdoc/>
    public bool Equals(CommsLoggerConfig? other) => other is not null && Enabled == other.Enabled && Verbose == other.Verbose
        && ProfAll == other.ProfAll && Debug == other.Debug && ProfOps.SequenceEqual(other.ProfOps);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Enabled, Verbose, ProfAll, Debug, ProfOps.Count);
}

/// <summary>
/// <c>distributed</c> (DeepSpeedSharp's, not DeepSpeed's): how long operations wait. Unset values keep what
/// initialisation chose (the code's timeout, DEEPSPEED_TIMEOUT / DSS_HEARTBEAT_TIMEOUT, or the defaults of 600 s and 30 s);
/// a value the environment set wins over the file.
/// </summary>
public sealed record DistributedConfig
{
    /// <summary>The longest timeout accepted: 30 days (a longer one overflows TimeSpan arithmetic and means "never").</summary>
    public const double MaxSeconds = 30 * 24 * 3600;
    /// <summary><c>timeout_seconds</c>: how long an operation waits for ranks that are alive but late (default 600).</summary>
    public double? TimeoutSeconds { get; init; }
    /// <summary><c>heartbeat_timeout_seconds</c>: how long a rank may send no heartbeat before it counts as frozen (default 30).</summary>
    public double? HeartbeatTimeoutSeconds { get; init; }
}

/// <summary><c>tensorboard</c> / <c>csv_monitor</c>.</summary>
public sealed record MonitorConfig
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>output_path</c>.</summary>
    public string OutputPath { get; init; } = "";
    /// <summary><c>job_name</c>.</summary>
    public string JobName { get; init; } = "DeepSpeedJobName";
}

/// <summary><c>wandb</c>.</summary>
public sealed record WandbConfig
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>group</c>.</summary>
    public string? Group { get; init; }
    /// <summary><c>team</c>.</summary>
    public string? Team { get; init; }
    /// <summary><c>project</c>.</summary>
    public string Project { get; init; } = "deepspeed";
}

/// <summary><c>comet</c>.</summary>
public sealed record CometConfig
{
    /// <summary><c>enabled</c>.</summary>
    public bool Enabled { get; init; }
    /// <summary><c>samples_log_interval</c>.</summary>
    public int SamplesLogInterval { get; init; } = 100;
    /// <summary><c>project</c>.</summary>
    public string? Project { get; init; }
    /// <summary><c>workspace</c>.</summary>
    public string? Workspace { get; init; }
    /// <summary><c>api_key</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary><c>experiment_name</c>.</summary>
    public string? ExperimentName { get; init; }
    /// <summary><c>experiment_key</c>.</summary>
    public string? ExperimentKey { get; init; }
    /// <summary><c>online</c>.</summary>
    public bool? Online { get; init; }
    /// <summary><c>mode</c>.</summary>
    public string? Mode { get; init; }
}

/// <summary><c>timers</c>: currently only <c>timers.throughput</c>.</summary>
public sealed record TimersConfig
{
    /// <summary><c>throughput.enabled</c>.</summary>
    public bool ThroughputEnabled { get; init; } = true;
    /// <summary><c>throughput.synchronized</c>: synchronize the device before reading the clock.</summary>
    public bool ThroughputSynchronized { get; init; } = true;
}

/// <summary><c>checkpoint</c>.</summary>
public sealed record CheckpointConfig
{
    /// <summary><c>tag_validation</c>: "Ignore", "Warn" or "Fail" (input is case-insensitive; normalised to this casing).</summary>
    public string TagValidation { get; init; } = "Warn";
    /// <summary><c>load_universal</c>.</summary>
    public bool LoadUniversal { get; init; }
    /// <summary><c>use_node_local_storage</c>.</summary>
    public bool UseNodeLocalStorage { get; init; }
    /// <summary><c>parallel_write.pipeline_stage</c>.</summary>
    public bool ParallelWritePipelineStage { get; init; }
}

/// <summary><c>aio</c>: NVMe I/O settings (read and kept; NVMe offload itself is not supported).</summary>
public sealed record AioConfig
{
    /// <summary><c>block_size</c>.</summary>
    public long BlockSize { get; init; } = 1_048_576;
    /// <summary><c>queue_depth</c>.</summary>
    public int QueueDepth { get; init; } = 8;
    /// <summary><c>intra_op_parallelism</c> (alias <c>thread_count</c>).</summary>
    public int IntraOpParallelism { get; init; } = 1;
    /// <summary><c>single_submit</c>.</summary>
    public bool SingleSubmit { get; init; }
    /// <summary><c>overlap_events</c>.</summary>
    public bool OverlapEvents { get; init; } = true;
    /// <summary><c>use_gds</c>.</summary>
    public bool UseGds { get; init; }
}

/// <summary>
/// <c>elasticity</c>: DeepSpeed's elastic batch sizes. When enabled, the config's batch keys are replaced by a train batch
/// size that the most data-parallel world sizes between <see cref="MinGpus"/> and <see cref="MaxGpus"/> can run with
/// one of <see cref="MicroBatchSizes"/> (<c>Topology.ElasticBatch</c>): the same global batch, and so the same training,
/// whatever world a restart lands on.
/// </summary>
public sealed record ElasticityConfig
{
    /// <summary><c>enabled</c> (default false).</summary>
    public bool Enabled { get; init; }
    /// <summary><c>max_train_batch_size</c>: the largest global batch acceptable (required when enabled; DeepSpeed's default 2000 otherwise).</summary>
    public int? MaxTrainBatchSize { get; init; }
    /// <summary><c>micro_batch_sizes</c>: the micro-batch sizes a rank may use (required when enabled).</summary>
    public IReadOnlyList<int>? MicroBatchSizes { get; init; }
    /// <summary><c>min_gpus</c>: the smallest data-parallel world size to plan for (default 1).</summary>
    public int MinGpus { get; init; } = 1;
    /// <summary><c>max_gpus</c>: the largest (default 10000).</summary>
    public int MaxGpus { get; init; } = 10000;
    /// <summary><c>min_time</c>: minutes a scheduler should let the job run before rescaling it (for the scheduler; no effect here).</summary>
    public double MinTime { get; init; } = 20;
    /// <summary><c>version</c>: 0.1 or 0.2 (default 0.2, DeepSpeed's latest).</summary>
    public double Version { get; init; } = 0.2;
    /// <summary><c>prefer_larger_batch</c>: among equally elastic batch sizes, take the larger (default true).</summary>
    public bool PreferLargerBatch { get; init; } = true;
    /// <summary><c>ignore_non_elastic_batch_info</c>: let the batch keys stand in the config (they are ignored) instead of an error.</summary>
    public bool IgnoreNonElasticBatchInfo { get; init; }
    /// <summary><c>model_parallel_size</c> (version 0.2): ranks per model replica (default 1).</summary>
    public int ModelParallelSize { get; init; } = 1;
    /// <summary><c>num_gpus_per_node</c> (version 0.2): ranks per host; 0.2 scales by whole hosts (default 1).</summary>
    public int NumGpusPerNode { get; init; } = 1;
}
