
namespace DeepSpeedSharp.Config.Schema;

/// <summary>Schema tables of the smaller sections: pipeline, activation checkpointing, monitoring, timers, checkpoint, aio.</summary>
internal static class MiscSchemas
{
    private static readonly NumericRange StagesRange = NumericRange.Int(1, 1_000_000) with { Or = "\"auto\"" };

    public static readonly SectionSchema<PipelineConfig> Pipeline = new SectionSchema<PipelineConfig>(() => new())
        .Add(
            new CustomField<PipelineConfig>("stages", (c, n, _, p) => c with { Stages = ReadStages(n, p) }, c => System.Text.Json.Nodes.JsonValue.Create(c.Stages))
                .WithRange(StagesRange).AutoIsValue(),
            Fields<PipelineConfig>.Of("partition", Kinds.String, c => c.Partition, (c, v) => c with { Partition = v }, (v, p) =>
            {
                if (v is not ("best" or "parameters" or "uniform") && !v.StartsWith("type:", StringComparison.Ordinal))
                    throw new DeepSpeedConfigException($"{p}: '{v}' is not a partition method; expected 'best', 'parameters', 'uniform' or 'type:REGEX'");
            }),
            Fields<PipelineConfig>.Of("seed_layers", Kinds.Bool, c => c.SeedLayers, (c, v) => c with { SeedLayers = v }),
            Fields<PipelineConfig>.Of("activation_checkpoint_interval", Kinds.Int(min: 0), c => c.ActivationCheckpointInterval, (c, v) => c with { ActivationCheckpointInterval = v }),
            Fields<PipelineConfig>.Of("pipe_partitioned", Kinds.Bool, c => c.PipePartitioned, (c, v) => c with { PipePartitioned = v }),
            Fields<PipelineConfig>.Of("grad_partitioned", Kinds.Bool, c => c.GradPartitioned, (c, v) => c with { GradPartitioned = v }),
            Fields<PipelineConfig>.Of("run_ahead_micro_batches", Kinds.Int(min: 0), c => c.RunAheadMicroBatches, (c, v) => c with { RunAheadMicroBatches = v }));

    private static string ReadStages(System.Text.Json.Nodes.JsonNode? n, string path)
    {
        if (n?.GetValueKind() == System.Text.Json.JsonValueKind.String && n.GetValue<string>() == "auto") return "auto";
        return Kinds.ReadLong(n, path, StagesRange).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public static readonly SectionSchema<ActivationCheckpointingConfig> ActivationCheckpointing = new SectionSchema<ActivationCheckpointingConfig>(() => new())
        .Add(
            Fields<ActivationCheckpointingConfig>.Of("partition_activations", Kinds.Bool, c => c.PartitionActivations, (c, v) => c with { PartitionActivations = v }),
            Fields<ActivationCheckpointingConfig>.Of("cpu_checkpointing", Kinds.Bool, c => c.CpuCheckpointing, (c, v) => c with { CpuCheckpointing = v }),
            Fields<ActivationCheckpointingConfig>.Of("contiguous_memory_optimization", Kinds.Bool, c => c.ContiguousMemoryOptimization, (c, v) => c with { ContiguousMemoryOptimization = v }),
            Fields<ActivationCheckpointingConfig>.Of("number_checkpoints", Kinds.OptionalInt(min: 1), c => c.NumberCheckpoints, (c, v) => c with { NumberCheckpoints = v }),
            Fields<ActivationCheckpointingConfig>.Of("synchronize_checkpoint_boundary", Kinds.Bool, c => c.SynchronizeCheckpointBoundary, (c, v) => c with { SynchronizeCheckpointBoundary = v }),
            Fields<ActivationCheckpointingConfig>.Of("profile", Kinds.Bool, c => c.Profile, (c, v) => c with { Profile = v }));

    public static readonly SectionSchema<FlopsProfilerConfig> FlopsProfiler = new SectionSchema<FlopsProfilerConfig>(() => new())
        .Add(
            Fields<FlopsProfilerConfig>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<FlopsProfilerConfig>.Of("recompute_fwd_factor", Kinds.Double(min: 0), c => c.RecomputeFwdFactor, (c, v) => c with { RecomputeFwdFactor = v }),
            Fields<FlopsProfilerConfig>.Of("profile_step", Kinds.Int(min: 1), c => c.ProfileStep, (c, v) => c with { ProfileStep = v }),
            Fields<FlopsProfilerConfig>.Of("module_depth", Kinds.Int(min: -1), c => c.ModuleDepth, (c, v) => c with { ModuleDepth = v }),
            Fields<FlopsProfilerConfig>.Of("top_modules", Kinds.Int(min: 0), c => c.TopModules, (c, v) => c with { TopModules = v }),
            Fields<FlopsProfilerConfig>.Of("detailed", Kinds.Bool, c => c.Detailed, (c, v) => c with { Detailed = v }),
            Fields<FlopsProfilerConfig>.Of("output_file", Kinds.OptionalString, c => c.OutputFile, (c, v) => c with { OutputFile = v }),
            Fields<FlopsProfilerConfig>.Of("peak_tflops", Kinds.OptionalDouble(min: 0), c => c.PeakTflops, (c, v) => c with { PeakTflops = v }));

    public static readonly SectionSchema<CommsLoggerConfig> CommsLogger = new SectionSchema<CommsLoggerConfig>(() => new())
        .Add(
            Fields<CommsLoggerConfig>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<CommsLoggerConfig>.Of("verbose", Kinds.Bool, c => c.Verbose, (c, v) => c with { Verbose = v }),
            Fields<CommsLoggerConfig>.Of("prof_all", Kinds.Bool, c => c.ProfAll, (c, v) => c with { ProfAll = v }),
            Fields<CommsLoggerConfig>.Of("debug", Kinds.Bool, c => c.Debug, (c, v) => c with { Debug = v }),
            Fields<CommsLoggerConfig>.Of("prof_ops", Kinds.StringList, c => c.ProfOps, (c, v) => c with { ProfOps = v }));

    public static readonly SectionSchema<DistributedConfig> Distributed = new SectionSchema<DistributedConfig>(() => new())
        .Add(
            Fields<DistributedConfig>.Of("timeout_seconds", Kinds.OptionalDouble(min: 0.001, max: DistributedConfig.MaxSeconds), c => c.TimeoutSeconds, (c, v) => c with { TimeoutSeconds = v }),
            Fields<DistributedConfig>.Of("heartbeat_timeout_seconds", Kinds.OptionalDouble(min: 0.001, max: DistributedConfig.MaxSeconds), c => c.HeartbeatTimeoutSeconds, (c, v) => c with { HeartbeatTimeoutSeconds = v }));

    /// <summary>tensorboard and csv_monitor share one shape.</summary>
    public static readonly SectionSchema<ElasticityConfig> Elasticity = new SectionSchema<ElasticityConfig>(() => new())
        .Add(
            Fields<ElasticityConfig>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<ElasticityConfig>.Of("max_train_batch_size", Kinds.OptionalInt(min: 1), c => c.MaxTrainBatchSize, (c, v) => c with { MaxTrainBatchSize = v }),
            Fields<ElasticityConfig>.Of("micro_batch_sizes", Kinds.OptionalIntList(min: 1), c => c.MicroBatchSizes, (c, v) => c with { MicroBatchSizes = v }),
            Fields<ElasticityConfig>.Of("min_gpus", Kinds.Int(min: 1), c => c.MinGpus, (c, v) => c with { MinGpus = v }),
            Fields<ElasticityConfig>.Of("max_gpus", Kinds.Int(min: 1), c => c.MaxGpus, (c, v) => c with { MaxGpus = v }),
            Fields<ElasticityConfig>.Of("min_time", Kinds.Double(min: 0), c => c.MinTime, (c, v) => c with { MinTime = v }),
            Fields<ElasticityConfig>.Of("version", Kinds.Double(min: 0.1, max: 0.2), c => c.Version, (c, v) => c with { Version = v }, (v, p) =>
            {
                if (v is not (0.1 or 0.2)) throw new DeepSpeedConfigException($"{p}: {v} is not an elasticity version; expected 0.1 or 0.2");
            }),
            Fields<ElasticityConfig>.Of("prefer_larger_batch", Kinds.Bool, c => c.PreferLargerBatch, (c, v) => c with { PreferLargerBatch = v }),
            Fields<ElasticityConfig>.Of("ignore_non_elastic_batch_info", Kinds.Bool, c => c.IgnoreNonElasticBatchInfo, (c, v) => c with { IgnoreNonElasticBatchInfo = v }),
            Fields<ElasticityConfig>.Of("model_parallel_size", Kinds.Int(min: 1), c => c.ModelParallelSize, (c, v) => c with { ModelParallelSize = v }),
            Fields<ElasticityConfig>.Of("num_gpus_per_node", Kinds.Int(min: 1), c => c.NumGpusPerNode, (c, v) => c with { NumGpusPerNode = v }));

    public static readonly SectionSchema<MonitorConfig> Monitor = new SectionSchema<MonitorConfig>(() => new())
        .Add(
            Fields<MonitorConfig>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<MonitorConfig>.Of("output_path", Kinds.String, c => c.OutputPath, (c, v) => c with { OutputPath = v }),
            Fields<MonitorConfig>.Of("job_name", Kinds.String, c => c.JobName, (c, v) => c with { JobName = v }));

    public static readonly SectionSchema<WandbConfig> Wandb = new SectionSchema<WandbConfig>(() => new())
        .Add(
            Fields<WandbConfig>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<WandbConfig>.Of("group", Kinds.OptionalString, c => c.Group, (c, v) => c with { Group = v }),
            Fields<WandbConfig>.Of("team", Kinds.OptionalString, c => c.Team, (c, v) => c with { Team = v }),
            Fields<WandbConfig>.Of("project", Kinds.String, c => c.Project, (c, v) => c with { Project = v }));

    public static readonly SectionSchema<CometConfig> Comet = new SectionSchema<CometConfig>(() => new())
        .Add(
            Fields<CometConfig>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<CometConfig>.Of("samples_log_interval", Kinds.Int(min: 1), c => c.SamplesLogInterval, (c, v) => c with { SamplesLogInterval = v }),
            Fields<CometConfig>.Of("project", Kinds.OptionalString, c => c.Project, (c, v) => c with { Project = v }),
            Fields<CometConfig>.Of("workspace", Kinds.OptionalString, c => c.Workspace, (c, v) => c with { Workspace = v }),
            Fields<CometConfig>.Of("api_key", Kinds.OptionalString, c => c.ApiKey, (c, v) => c with { ApiKey = v }),
            Fields<CometConfig>.Of("experiment_name", Kinds.OptionalString, c => c.ExperimentName, (c, v) => c with { ExperimentName = v }),
            Fields<CometConfig>.Of("experiment_key", Kinds.OptionalString, c => c.ExperimentKey, (c, v) => c with { ExperimentKey = v }),
            Fields<CometConfig>.Of("online", new ValueKind<bool?>((n, p) => n is null ? null : Kinds.ReadBool(n, p), v => v is null ? null : System.Text.Json.Nodes.JsonValue.Create(v.Value)), c => c.Online, (c, v) => c with { Online = v }),
            Fields<CometConfig>.Of("mode", Kinds.OptionalString, c => c.Mode, (c, v) => c with { Mode = v }));

    private sealed record Throughput(bool Enabled = true, bool Synchronized = true);

    private static readonly SectionSchema<Throughput> ThroughputSchema = new SectionSchema<Throughput>(() => new())
        .Add(
            Fields<Throughput>.Of("enabled", Kinds.Bool, c => c.Enabled, (c, v) => c with { Enabled = v }),
            Fields<Throughput>.Of("synchronized", Kinds.Bool, c => c.Synchronized, (c, v) => c with { Synchronized = v }));

    public static readonly SectionSchema<TimersConfig> Timers = new SectionSchema<TimersConfig>(() => new())
        .Add(Fields<TimersConfig>.Section("throughput", ThroughputSchema,
            c => new Throughput(c.ThroughputEnabled, c.ThroughputSynchronized),
            (c, v) => c with { ThroughputEnabled = v.Enabled, ThroughputSynchronized = v.Synchronized }));

    private sealed record ParallelWrite(bool PipelineStage = false);

    private static readonly SectionSchema<ParallelWrite> ParallelWriteSchema = new SectionSchema<ParallelWrite>(() => new())
        .Add(Fields<ParallelWrite>.Of("pipeline_stage", Kinds.Bool, c => c.PipelineStage, (c, v) => c with { PipelineStage = v }));

    public static readonly SectionSchema<CheckpointConfig> Checkpoint = new SectionSchema<CheckpointConfig>(() => new())
        .Add(
            Fields<CheckpointConfig>.Of("tag_validation", Kinds.OneOf("Ignore", "Warn", "Fail"), c => c.TagValidation, (c, v) => c with { TagValidation = v }),
            Fields<CheckpointConfig>.Of("load_universal", Kinds.Bool, c => c.LoadUniversal, (c, v) => c with { LoadUniversal = v }),
            Fields<CheckpointConfig>.Of("use_node_local_storage", Kinds.Bool, c => c.UseNodeLocalStorage, (c, v) => c with { UseNodeLocalStorage = v }),
            Fields<CheckpointConfig>.Section("parallel_write", ParallelWriteSchema, c => new ParallelWrite(c.ParallelWritePipelineStage), (c, v) => c with { ParallelWritePipelineStage = v.PipelineStage }));

    public static readonly SectionSchema<AioConfig> Aio = new SectionSchema<AioConfig>(() => new())
        .Add(
            Fields<AioConfig>.Of("block_size", Kinds.Long(min: 1), c => c.BlockSize, (c, v) => c with { BlockSize = v }),
            Fields<AioConfig>.Of("queue_depth", Kinds.Int(min: 1), c => c.QueueDepth, (c, v) => c with { QueueDepth = v }),
            Fields<AioConfig>.Of("intra_op_parallelism", Kinds.Int(min: 1), c => c.IntraOpParallelism, (c, v) => c with { IntraOpParallelism = v }).Alias("thread_count"),
            Fields<AioConfig>.Of("single_submit", Kinds.Bool, c => c.SingleSubmit, (c, v) => c with { SingleSubmit = v }),
            Fields<AioConfig>.Of("overlap_events", Kinds.Bool, c => c.OverlapEvents, (c, v) => c with { OverlapEvents = v }),
            Fields<AioConfig>.Of("use_gds", Kinds.Bool, c => c.UseGds, (c, v) => c with { UseGds = v }));
}
