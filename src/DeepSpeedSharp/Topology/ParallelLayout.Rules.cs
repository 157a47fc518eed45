using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Topology;

public sealed partial class ParallelLayout
{
    /// <summary>
    /// Every rule about combining the parallelisms, in one place; throws a <see cref="DeepSpeedConfigException"/> listing
    /// every rule the layout breaks:
    /// <list type="bullet">
    /// <item>pipeline × tensor × data covers the world (and an mpu's model-parallel size is pipeline × tensor);</item>
    /// <item>an integer <c>pipeline.stages</c> in the config is the pipeline size the job runs ("auto" or absent: any);</item>
    /// <item>ZeRO stages 0, 1 and 2 combine with a pipeline (stage 2 beyond DeepSpeed, which refuses it); stage 3 does
    /// not, as in DeepSpeed: each stage's parameters would be gathered for every micro-batch's forward and backward,
    /// interleaved by the schedule;</item>
    /// <item>hpZ's <c>zero_hpz_partition_size</c> divides the data-parallel size, and each block of that many
    /// consecutive data-parallel ranks runs on one host (hpZ keeps a model copy per host);</item>
    /// <item>running ahead (<c>pipeline.run_ahead_micro_batches</c>) does not combine with virtual stages.</item>
    /// </list>
    /// The batch rules (train = micro × accumulation × data parallel; the interleaved schedule's micro-batches a multiple
    /// of the stages) are in <see cref="ResolveBatchSizes"/>.
    /// </summary>
    public void Validate()
    {
        var errors = Errors();
        if (errors.Count > 0) throw DeepSpeedConfigException.Of(errors);
    }

    /// <summary>The rules <see cref="Validate"/> checks, as one message per broken rule (empty when the layout is valid).</summary>
    public IReadOnlyList<string> Errors()
    {
        var errors = new List<string>();
        int pp = PipelineParallelSize, tp = TensorParallelSize, dp = DataParallelSize;
        if (pp < 1 || tp < 1 || VirtualStages < 1)
        {
            errors.Add($"the pipeline size ({pp}), tensor-parallel size ({tp}) and virtual stages ({VirtualStages}) must each be at least 1");
            return errors;
        }
        if (dp < 1 || pp * tp * dp != WorldSize)
            errors.Add(Mpu == null
                ? $"pipeline {pp} × tensor {tp} does not divide the world of {WorldSize} rank{(WorldSize == 1 ? "" : "s")}: the data-parallel size is world / (pipeline × tensor)"
                : $"the mpu's sizes do not cover the world: pipeline {pp} × tensor {tp} × data parallel {dp} = {pp * tp * dp}, but the world has {WorldSize} ranks");
        if (Mpu != null && Mpu.GetModelParallelWorldSize() != pp * tp)
            errors.Add($"the mpu reports a model-parallel size of {Mpu.GetModelParallelWorldSize()}, but pipeline {pp} × tensor {tp} = {pp * tp}: " +
                       "the model-parallel group holds one replica (every stage and tensor slice)");
        if (ConfiguredStages(Config) is { } stages && stages != pp)
            errors.Add($"pipeline.stages is {stages} in the config, but {PipelineSource} is {pp}; set pipeline.stages to {pp} or \"auto\"");
        if ((pp > 1 || PipelineEngine) && ZeroStage == 3)
            errors.Add($"zero_optimization.stage 3 cannot be combined with pipeline parallelism ({PipelineSource} is {pp}), as in DeepSpeed; use ZeRO stage 0, 1 or 2");
        int hpz = HpzPartitionSize;
        if (hpz > 1 && dp > 1 && (hpz > dp || dp % hpz != 0))
            errors.Add($"zero_optimization.zero_hpz_partition_size = {hpz} must divide the data-parallel size {dp} (set it to the number of ranks per host)");
        else if (HpzOn && DataParallelGroups != null)
        {
            var hosts = Dist.Hosts;
            var spanning = HpzBlocks().FirstOrDefault(b => b.Select(r => hosts[r]).Distinct().Count() > 1);
            if (spanning != null)
                errors.Add($"zero_optimization.zero_hpz_partition_size = {hpz} puts ranks [{string.Join(",", spanning)}] in one secondary group, " +
                           $"but they run on hosts {string.Join(", ", spanning.Select(r => hosts[r]).Distinct())}; hpZ keeps a model copy per host: " +
                           "set it to the number of ranks per host or a divisor of it");
        }
        int runAhead = Config.Pipeline.RunAheadMicroBatches;
        if (runAhead > 0 && VirtualStages > 1)
            errors.Add($"pipeline.run_ahead_micro_batches {runAhead} does not combine with {VirtualStages} virtual stages: a stage's later chunks wait for the " +
                       "last stage's earlier ones, so running ahead would deadlock; set it to 0 or use one virtual stage");
        return errors;
    }

    /// <summary>
    /// The batch sizes over this layout's data-parallel ranks (<see cref="DeepSpeedConfig.ResolveBatchSizes"/>: keys
    /// "auto" or absent in the config come from the arguments; with an enabled <c>elasticity</c> section,
    /// <see cref="ElasticBatch"/>'s), and the schedule's rule: with virtual stages the
    /// micro-batches per step (gradient_accumulation_steps) are a multiple of the pipeline stages.
    /// </summary>
    public BatchSizes ResolveBatchSizes(int? trainBatchSize = null, int? microBatchPerGpu = null, int? gradientAccumulationSteps = null)
    {
        var batch = Config.Elasticity.Enabled
            ? ElasticBatch.Resolve(Config, Math.Max(1, DataParallelSize), trainBatchSize, microBatchPerGpu, gradientAccumulationSteps)
            : Config.ResolveBatchSizes(Math.Max(1, DataParallelSize), trainBatchSize, microBatchPerGpu, gradientAccumulationSteps);
        if (VirtualStages > 1 && batch.GradientAccumulationSteps % PipelineParallelSize != 0)
            throw new DeepSpeedConfigException($"the interleaved schedule needs the micro-batches (gradient_accumulation_steps {batch.GradientAccumulationSteps}) " +
                                               $"to be a multiple of the pipeline stages ({PipelineParallelSize})");
        return batch;
    }
}
