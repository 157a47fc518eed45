using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Config.Schema;

namespace DeepSpeedSharp.Config;

public sealed partial class DeepSpeedConfig
{
    private static Field<DeepSpeedConfig> Of<V>(string key, ValueKind<V> kind, Func<DeepSpeedConfig, V> get, Action<DeepSpeedConfig, V> set, Action<V, string>? check = null) =>
        Fields<DeepSpeedConfig>.Of(key, kind, get, (c, v) => { set(c, v); return c; }, check);

    private static Field<DeepSpeedConfig> Section<S>(string key, SectionSchema<S> schema, Func<DeepSpeedConfig, S> get, Action<DeepSpeedConfig, S> set) =>
        Fields<DeepSpeedConfig>.Section(key, schema, get, (c, v) => { set(c, v); return c; });

    private static readonly NumericRange BatchRange = NumericRange.Int(1, int.MaxValue) with { Or = "\"auto\"" };

    /// <summary>A batch key: "auto" is recorded (not defaulted) so <see cref="ResolveBatchSizes"/> can fill it.</summary>
    private static Field<DeepSpeedConfig> Batch(string key, Func<DeepSpeedConfig, int?> get, Action<DeepSpeedConfig, int?> set) =>
        new CustomField<DeepSpeedConfig>(key, (c, n, ctx, p) =>
        {
            if (n?.GetValueKind() == JsonValueKind.String && n.GetValue<string>() == "auto")
            {
                ctx.AutoKeys.Add(p);
                set(c, null);
                return c;
            }
            set(c, n is null ? null : (int)Kinds.ReadLong(n, p, BatchRange));
            return c;
        }, c => get(c) is { } v ? JsonValue.Create(v) : null).WithRange(BatchRange).AutoIsValue();

    /// <summary>The canonical dotted path of every key the reader accepts through a field (for the key-table test).</summary>
    internal static IEnumerable<string> SchemaKeyPaths() => TopLevel.KeyPaths("");

    /// <summary>Every key the reader accepts through a field, with the range of each numeric key (for the range test).</summary>
    internal static IEnumerable<SchemaKey> SchemaKeys() => TopLevel.Keys("");

    private static readonly SectionSchema<DeepSpeedConfig> TopLevel = new SectionSchema<DeepSpeedConfig>(() => new DeepSpeedConfig()) { WarnOnAuto = true }
        .Add(
            Batch("train_batch_size", c => c.TrainBatchSize, (c, v) => c.TrainBatchSize = v),
            Batch("train_micro_batch_size_per_gpu", c => c.TrainMicroBatchSizePerGpu, (c, v) => c.TrainMicroBatchSizePerGpu = v),
            Batch("gradient_accumulation_steps", c => c.GradientAccumulationSteps, (c, v) => c.GradientAccumulationSteps = v),
            Of("steps_per_print", Kinds.Int(min: 1), c => c.StepsPerPrint, (c, v) => c.StepsPerPrint = v),
            Of("wall_clock_breakdown", Kinds.Bool, c => c.WallClockBreakdown, (c, v) => c.WallClockBreakdown = v),
            Of("memory_breakdown", Kinds.Bool, c => c.MemoryBreakdown, (c, v) => c.MemoryBreakdown = v),
            Of("gradient_clipping", Kinds.Double(min: 0), c => c.GradientClipping, (c, v) => c.GradientClipping = v),
            Of("prescale_gradients", Kinds.Bool, c => c.PrescaleGradients, (c, v) => c.PrescaleGradients = v),
            Of("gradient_predivide_factor", Kinds.Double(min: 0, minExclusive: true), c => c.GradientPredivideFactor, (c, v) => c.GradientPredivideFactor = v),
            Of("gradient_allreduce_op", Kinds.OneOf("mean", "sum"), c => c.GradientAllreduceOp, (c, v) => c.GradientAllreduceOp = v),
            Of("communication_data_type", Kinds.Dtype, c => c.CommunicationDataType, (c, v) => c.CommunicationDataType = v),
            Of("zero_allow_untested_optimizer", Kinds.Bool, c => c.ZeroAllowUntestedOptimizer, (c, v) => c.ZeroAllowUntestedOptimizer = v),
            Of("zero_force_ds_cpu_optimizer", Kinds.Bool, c => c.ZeroForceDsCpuOptimizer, (c, v) => c.ZeroForceDsCpuOptimizer = v),
            Of("dataloader_drop_last", Kinds.Bool, c => c.DataloaderDropLast, (c, v) => c.DataloaderDropLast = v),
            Of("managed_gradient_accumulation", Kinds.Bool, _ => true, (_, _) => { }),
            Of("sequence_parallel_size", Kinds.Int(min: 1), _ => 1, (_, _) => { }),
            Section("zero_optimization", ZeroSchemas.Zero, c => c.ZeroOptimization, (c, v) => c.ZeroOptimization = v),
            Section("bf16", PrecisionSchemas.Bf16, c => c.Bf16, (c, v) => c.Bf16 = v),
            Section("fp16", PrecisionSchemas.Fp16, c => c.Fp16, (c, v) => c.Fp16 = v),
            Section("data_types", PrecisionSchemas.DataTypes, c => c.DataTypes, (c, v) => c.DataTypes = v),
            new CustomField<DeepSpeedConfig>("optimizer", (c, n, ctx, p) => { c.Optimizer = OptimizerSchemas.Read(n, ctx, p); return c; },
                c => OptimizerSchemas.Write(c.Optimizer), OptimizerSchemas.Keys).AutoIsValue(),
            new CustomField<DeepSpeedConfig>("scheduler", (c, n, ctx, p) => { c.Scheduler = SchedulerSchemas.Read(n, ctx, p); return c; },
                c => SchedulerSchemas.Write(c.Scheduler), SchedulerSchemas.Keys).AutoIsValue(),
            Section("pipeline", MiscSchemas.Pipeline, c => c.Pipeline, (c, v) => c.Pipeline = v),
            Section("activation_checkpointing", MiscSchemas.ActivationCheckpointing, c => c.ActivationCheckpointing, (c, v) => c.ActivationCheckpointing = v),
            Section("flops_profiler", MiscSchemas.FlopsProfiler, c => c.FlopsProfiler, (c, v) => c.FlopsProfiler = v),
            Section("comms_logger", MiscSchemas.CommsLogger, c => c.CommsLogger, (c, v) => c.CommsLogger = v),
            Section("distributed", MiscSchemas.Distributed, c => c.Distributed, (c, v) => c.Distributed = v),
            Section("tensorboard", MiscSchemas.Monitor, c => c.Tensorboard, (c, v) => c.Tensorboard = v),
            Section("csv_monitor", MiscSchemas.Monitor, c => c.CsvMonitor, (c, v) => c.CsvMonitor = v),
            Section("wandb", MiscSchemas.Wandb, c => c.Wandb, (c, v) => c.Wandb = v),
            Section("comet", MiscSchemas.Comet, c => c.Comet, (c, v) => c.Comet = v),
            Section("timers", MiscSchemas.Timers, c => c.Timers, (c, v) => c.Timers = v),
            Section("checkpoint", MiscSchemas.Checkpoint, c => c.Checkpoint, (c, v) => c.Checkpoint = v),
            Section("aio", MiscSchemas.Aio, c => c.Aio, (c, v) => c.Aio = v),
            Section("elasticity", MiscSchemas.Elasticity, c => c.Elasticity, (c, v) => c.Elasticity = v));
}
