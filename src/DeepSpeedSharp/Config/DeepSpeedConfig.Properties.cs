namespace DeepSpeedSharp.Config;

public sealed partial class DeepSpeedConfig
{
    /// <summary>A copy with another <c>zero_optimization</c> section (the engine's adjustments, e.g. for a pipeline).</summary>
    internal DeepSpeedConfig WithZeroOptimization(ZeroConfig zero)
    {
        var copy = (DeepSpeedConfig)MemberwiseClone();
        copy.ZeroOptimization = zero;
        return copy;
    }

    /// <summary>
    /// A copy with another <c>pipeline</c> section, for a program that adjusts the user's config before
    /// <c>DeepSpeed.Initialize</c> (e.g. <c>pipe_partitioned</c> and <c>grad_partitioned</c> false under sequence parallelism).
    /// </summary>
    public DeepSpeedConfig WithPipeline(PipelineConfig pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var copy = (DeepSpeedConfig)MemberwiseClone();
        copy.Pipeline = pipeline;
        return copy;
    }

    /// <summary><c>train_batch_size</c>: global batch; null when absent or "auto" (see <see cref="ResolveBatchSizes"/>).</summary>
    public int? TrainBatchSize { get; private set; }
    /// <summary><c>train_micro_batch_size_per_gpu</c>: per-rank micro batch; null when absent or "auto".</summary>
    public int? TrainMicroBatchSizePerGpu { get; private set; }
    /// <summary><c>gradient_accumulation_steps</c>; null when absent or "auto".</summary>
    public int? GradientAccumulationSteps { get; private set; }
    /// <summary><c>steps_per_print</c>: progress report every N optimizer steps. Default 10 (DeepSpeed's documented value).</summary>
    public int StepsPerPrint { get; private set; } = 10;
    /// <summary><c>wall_clock_breakdown</c>: time forward/backward/step.</summary>
    public bool WallClockBreakdown { get; private set; }
    /// <summary><c>memory_breakdown</c>.</summary>
    public bool MemoryBreakdown { get; private set; }
    /// <summary>
    /// <c>gradient_clipping</c>: global gradient-norm clip (0 = off). Default <b>0.0</b> — the value of DeepSpeed ≤ 0.18
    /// and of every Gaudi-era release; DeepSpeed 0.19 changed it to 1.0 (#8068). Write it explicitly to be portable.
    /// </summary>
    public double GradientClipping { get; private set; }
    /// <summary><c>prescale_gradients</c>: divide gradients before (instead of after) the all-reduce.</summary>
    public bool PrescaleGradients { get; private set; }
    /// <summary><c>gradient_predivide_factor</c>.</summary>
    public double GradientPredivideFactor { get; private set; } = 1.0;
    /// <summary><c>gradient_allreduce_op</c>: "mean" or "sum".</summary>
    public string GradientAllreduceOp { get; private set; } = "mean";
    /// <summary><c>communication_data_type</c>: null, "fp32", "fp16" or "bf16".</summary>
    public string? CommunicationDataType { get; private set; }
    /// <summary><c>zero_allow_untested_optimizer</c>.</summary>
    public bool ZeroAllowUntestedOptimizer { get; private set; }
    /// <summary><c>zero_force_ds_cpu_optimizer</c>: with ZeRO-Offload, require DeepSpeed's CPU Adam.</summary>
    public bool ZeroForceDsCpuOptimizer { get; private set; } = true;
    /// <summary><c>dataloader_drop_last</c>.</summary>
    public bool DataloaderDropLast { get; private set; }
    /// <summary><c>zero_optimization</c>.</summary>
    public ZeroConfig ZeroOptimization { get; private set; } = new();
    /// <summary><c>bf16</c> (old name <c>bfloat16</c>).</summary>
    public Bf16Config Bf16 { get; private set; } = new();
    /// <summary><c>fp16</c>.</summary>
    public Fp16Config Fp16 { get; private set; } = new();
    /// <summary><c>data_types</c>.</summary>
    public DataTypesConfig DataTypes { get; private set; } = new();
    /// <summary><c>optimizer</c>; null when absent (the program passes its own).</summary>
    public OptimizerConfig? Optimizer { get; private set; }
    /// <summary><c>scheduler</c>; null when absent.</summary>
    public SchedulerConfig? Scheduler { get; private set; }
    /// <summary><c>pipeline</c>.</summary>
    public PipelineConfig Pipeline { get; private set; } = new();
    /// <summary><c>activation_checkpointing</c>.</summary>
    public ActivationCheckpointingConfig ActivationCheckpointing { get; private set; } = new();
    /// <summary><c>flops_profiler</c>.</summary>
    public FlopsProfilerConfig FlopsProfiler { get; private set; } = new();
    /// <summary><c>comms_logger</c>.</summary>
    public CommsLoggerConfig CommsLogger { get; private set; } = new();
    /// <summary><c>distributed</c>: the collective and heartbeat timeouts (DeepSpeedSharp's section).</summary>
    public DistributedConfig Distributed { get; private set; } = new();
    /// <summary><c>tensorboard</c>.</summary>
    public MonitorConfig Tensorboard { get; private set; } = new();
    /// <summary><c>csv_monitor</c>.</summary>
    public MonitorConfig CsvMonitor { get; private set; } = new();
    /// <summary><c>wandb</c>.</summary>
    public WandbConfig Wandb { get; private set; } = new();
    /// <summary><c>comet</c>.</summary>
    public CometConfig Comet { get; private set; } = new();
    /// <summary><c>timers</c>.</summary>
    public TimersConfig Timers { get; private set; } = new();
    /// <summary><c>checkpoint</c>.</summary>
    public CheckpointConfig Checkpoint { get; private set; } = new();
    /// <summary><c>aio</c>.</summary>
    public AioConfig Aio { get; private set; } = new();

    /// <summary><c>elasticity</c>: when enabled, the batch sizes come from it (<c>Topology.ElasticBatch</c>).</summary>
    public ElasticityConfig Elasticity { get; private set; } = new();

    /// <summary>"bf16", "fp16" or "fp32": the enabled mixed-precision mode.</summary>
    public string Precision => Bf16.Enabled ? "bf16" : Fp16.Enabled ? "fp16" : "fp32";
}
