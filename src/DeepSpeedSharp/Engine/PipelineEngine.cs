using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Precision;
using DeepSpeedSharp.Schedulers;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>Where a stage's time went in one <see cref="PipelineEngine.TrainBatch"/>.</summary>
/// <param name="ScheduleSeconds">Wall time from the first instruction to the optimizer step.</param>
/// <param name="ComputeSeconds">Time in forward and backward passes (and the loss).</param>
/// <param name="MicroBatches">Micro-batches m.</param>
/// <param name="Stages">Stages p.</param>
/// <param name="VirtualStages">Virtual stages (chunks) per stage v.</param>
/// <param name="PipelineSeconds">The pipeline's flush time: the longest <see cref="ScheduleSeconds"/> of its stages (the last
/// stage finishes its schedule first and waits for the others inside the optimizer step).</param>
/// <param name="ReceiveSeconds">Time in receives from the neighbouring stages: waiting for their messages and copying them.</param>
public sealed record PipelineBatchTimings(double ScheduleSeconds, double ComputeSeconds, int MicroBatches, int Stages, int VirtualStages, double PipelineSeconds,
    double ReceiveSeconds)
{
    /// <summary>The measured bubble: the fraction of the pipeline's flush time this stage did not compute (waiting for its
    /// neighbours, sending, receiving) — the quantity (p − 1) / (m + p − 1) predicts for equal stages.</summary>
    public double BubbleFraction => PipelineSeconds > 0 ? 1 - ComputeSeconds / PipelineSeconds : 0;

    /// <summary>The part of <see cref="BubbleFraction"/> this stage spent idle: in receives, and after its schedule until the
    /// pipeline's flush ended. The rest of the bubble is the stage's own work between passes (loading data, starting sends,
    /// releasing buffers, per-micro-batch gradient bookkeeping).</summary>
    public double IdleFraction => PipelineSeconds > 0 ? IdleSeconds / PipelineSeconds : 0;

    /// <summary>Seconds this stage spent idle: in receives, and after its schedule until the pipeline's flush ended.</summary>
    public double IdleSeconds => ReceiveSeconds + PipelineSeconds - ScheduleSeconds;

    /// <summary>The schedule's ideal bubble with equal stages and free communication: (p − 1) / (m + p − 1) for 1F1B,
    /// (p − 1) / (v·m + p − 1) for the interleaved schedule.</summary>
    public double TheoreticalBubbleFraction => (Stages - 1) / (double)(VirtualStages * MicroBatches + Stages - 1);
}

/// <summary>
/// DeepSpeed's <c>PipelineEngine</c>, returned by <see cref="DeepSpeed.Initialize"/> for a <see cref="PipelineModule"/>:
/// trains one stage of the pipeline. <see cref="TrainBatch"/> runs one optimizer step over
/// <c>gradient_accumulation_steps</c> micro-batches with the 1F1B schedule (<see cref="TrainSchedule"/>): activations go
/// forward and gradients backward between stages, tied weights' gradients are summed over their stages, gradients are
/// reduced over the stage's data-parallel group (or ZeRO-1/2 partitions) and every stage steps its own parameters.
/// <see cref="EvalBatch"/> runs the forward passes only. <c>Forward</c>, <c>Backward</c> and <c>Step</c> fail with a
/// message pointing here, as in DeepSpeed.
/// <para>Data: the first stage takes the inputs and the last stage the labels of each (inputs, labels) pair from the
/// data iterator; give both stages the same sequence (other stages may pass null).</para>
/// </summary>
public sealed partial class PipelineEngine : DeepSpeedEngine
{
    private readonly PipelineModule pipe;
    private readonly StageChannel channel;
    private IEnumerator<(Tensor Inputs, Tensor Labels)>? dataIterator;

    internal PipelineEngine(PipelineModule module, ITrainingStrategy? strategy, LrScheduler? lrScheduler, DeepSpeedConfig config,
        BatchSizes batch, PrecisionPolicy precision, ParallelLayout layout)
        : base(module, strategy, lrScheduler, config, batch, precision, layout)
    {
        pipe = module;
        RecordedLossUnit = "batch(es)"; // one loss per TrainBatch: the mean over its micro-batches and stages
        // The schedule checks its own inputs (micro-batches a multiple of the stages with virtual stages, no run-ahead with
        // them): built once here, its refusal is a config error at Initialize rather than at the first TrainBatch.
        try { TrainScheduleForThisStage(); }
        catch (ArgumentException e) { throw new DeepSpeedConfigException(e.Message); }
        if (config.Pipeline.ActivationCheckpointInterval > 0) module.ActivationCheckpointInterval = config.Pipeline.ActivationCheckpointInterval;
        channel = new StageChannel(module.Grid, config.Pipeline.PipePartitioned, config.Pipeline.GradPartitioned,
            module.parameters().FirstOrDefault()?.device ?? CPU, separateGradientGroups: module.VirtualStages > 1);
    }

    /// <inheritdoc/>
    private protected override string? MicroStepApiRefusal =>
        "is not available on a pipeline engine: one call to TrainBatch(dataIterator) runs the forward, backward and optimizer step " +
        "of every micro-batch (EvalBatch for evaluation), as DeepSpeed's PipelineEngine does";

    /// <summary>The pipeline module this engine trains (this stage's layers).</summary>
    public PipelineModule PipelineModule => pipe;

    /// <summary>Pipeline stages.</summary>
    public int NumStages => pipe.NumStages;

    /// <summary>This rank's stage (<c>stage_id</c>).</summary>
    public int StageId => pipe.StageId;

    /// <summary>Micro-batches per <see cref="TrainBatch"/> (gradient_accumulation_steps).</summary>
    public int MicroBatches => GradientAccumulationSteps;

    /// <summary>True on the first stage (it reads the inputs).</summary>
    public bool IsFirstStage() => StageId == 0;

    /// <summary>True on the last stage (it reads the labels and computes the loss).</summary>
    public bool IsLastStage() => StageId == NumStages - 1;

    /// <summary>
    /// The loss of the last <see cref="TrainBatch"/> on this data-parallel replica, before averaging over replicas
    /// (DeepSpeed's <c>dp_group_loss</c>); the same on every stage.
    /// </summary>
    public double DataParallelGroupLoss { get; private set; } = double.NaN;

    /// <summary>Sets the iterator <see cref="TrainBatch"/> and <see cref="EvalBatch"/> read when given none (DeepSpeed's <c>set_dataiterator</c>).</summary>
    public void SetDataIterator(IEnumerator<(Tensor Inputs, Tensor Labels)>? iterator) => dataIterator = iterator;

    /// <summary>
    /// Forgets the activation and gradient shapes exchanged between stages, for a model whose activation shapes change
    /// (e.g. a new sequence length); the next batch sends them again (DeepSpeed's <c>reset_activation_shape</c>).
    /// </summary>
    public void ResetActivationShape() => channel.ResetShapes();

    /// <summary>
    /// Trains on one global batch: gradient_accumulation_steps micro-batches through the 1F1B schedule, then one optimizer
    /// step. Returns the loss averaged over the micro-batches and the data-parallel replicas, on every rank (DeepSpeed's
    /// <c>agg_train_loss</c>).
    /// </summary>
    public double TrainBatch(IEnumerator<(Tensor Inputs, Tensor Labels)>? dataIterator = null)
    {
        if (Optimizer == null) throw new InvalidOperationException("TrainBatch needs an optimizer: " + OptimizerChoice.HowToGiveOne);
        if (pipe.LossFn == null && IsLastStage()) throw new InvalidOperationException("TrainBatch needs the PipelineModule's lossFn: the last stage computes the loss from its output and the labels");
        if (dataIterator != null) this.dataIterator = dataIterator;
        Module.train();
        var run = new ScheduleRun(this, TrainScheduleForThisStage(), training: true, computeLoss: true, keepOutputs: false);
        run.Execute();
        LastBatchTimings = run.Timings;
        return run.AggregatedLoss;
    }

    /// <summary>Where this stage's time went in the last <see cref="TrainBatch"/>: the schedule's wall time up to the
    /// optimizer step, the part spent computing forward and backward passes, and the bubble (the rest).</summary>
    public PipelineBatchTimings? LastBatchTimings { get; private set; }

    /// <summary>The schedule <see cref="TrainBatch"/> runs on this stage, printable (one step per line): DeepSpeed's 1F1B, or
    /// the interleaved schedule when the module has virtual stages or the config sets
    /// <c>pipeline.run_ahead_micro_batches</c> (1F1B with stages running ahead).</summary>
    public PipeSchedule TrainScheduleForThisStage() => pipe.VirtualStages > 1 || RunAhead > 0
        ? new InterleavedSchedule(MicroBatches, NumStages, StageId, pipe.VirtualStages, runAhead: RunAhead)
        : new TrainSchedule(MicroBatches, NumStages, StageId);

    private int RunAhead => Config.Pipeline.RunAheadMicroBatches;

    /// <summary>The next (inputs, labels) pair, for the first and last stages.</summary>
    private (Tensor Inputs, Tensor Labels) NextMicroBatch()
    {
        if (dataIterator == null)
            throw new InvalidOperationException($"stage {StageId} needs data: pass a data iterator to TrainBatch/EvalBatch (or SetDataIterator) on the first and last stages");
        if (!dataIterator.MoveNext())
            throw new InvalidOperationException($"the data iterator ended in the middle of a batch on stage {StageId}: it must yield gradient_accumulation_steps ({MicroBatches}) micro-batches per batch");
        return dataIterator.Current;
    }

    /// <summary>Sums the loss (or another scalar) over the data-parallel group and divides by its size.</summary>
    private double MeanOverDataParallel(double value)
    {
        if (DataParallelWorldSize == 1) return value;
        using var t = tensor(new[] { value }, ScalarType.Float64);
        DataParallelGroup.AllReduce(t, ReduceOp.Sum);
        return t.item<double>() / DataParallelWorldSize;
    }

    /// <summary>Broadcasts values from the last stage to every stage of this pipeline (DeepSpeed's <c>_bcast_pipe_scalar</c>).</summary>
    private double[] BroadcastFromLastStage(double[] values)
    {
        var group = pipe.Grid.GetPipelineModelParallelGroup()!;
        if (group.Size == 1) return values;
        using var t = tensor(values, ScalarType.Float64);
        group.Broadcast(t, pipe.Grid.StageToGlobal(NumStages - 1));
        return t.data<double>().ToArray();
    }

    /// <summary>Releases the engine's stage-to-stage groups and what the base engine owns.</summary>
    public override void Dispose()
    {
        channel.Dispose();
        base.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"PipelineEngine(stage {StageId} of {NumStages}, {MicroBatches} micro-batches, {pipe.Grid})";
}
