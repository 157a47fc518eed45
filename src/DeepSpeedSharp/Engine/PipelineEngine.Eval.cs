using DeepSpeedSharp.Pipeline;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>What <see cref="PipelineEngine.EvalBatch"/> returns.</summary>
/// <param name="Loss">The evaluation loss averaged over micro-batches and data-parallel replicas: on every rank with
/// <c>bcastLoss</c>, else on the last stage only (null elsewhere); null when the loss is not computed or not reduced.</param>
/// <param name="MicroBatchLosses">Last stage, with <c>reduceOutput</c> null: each micro-batch's loss on this replica.</param>
/// <param name="Logits">Last stage, with <c>returnLogits</c>: each micro-batch's output (the caller disposes them).</param>
public sealed record PipelineEvalResult(double? Loss, IReadOnlyList<double>? MicroBatchLosses, IReadOnlyList<Tensor>? Logits);

public sealed partial class PipelineEngine
{
    /// <summary>
    /// Evaluates one batch: the forward passes of <paramref name="numMicroBatches"/> micro-batches (default
    /// gradient_accumulation_steps) through the inference schedule, without gradients, in evaluation mode (the module's
    /// mode is restored afterwards). As DeepSpeed's <c>eval_batch</c>: with <paramref name="reduceOutput"/> "avg" the last
    /// stage averages the loss over the micro-batches and the data-parallel replicas; with <paramref name="bcastLoss"/> it
    /// then broadcasts it to every stage, so every rank returns it — false saves that broadcast (the guide's
    /// "Optimizing Pipeline Parallelism"): only the last stage, which computed it, returns the loss.
    /// </summary>
    public PipelineEvalResult EvalBatch(IEnumerator<(Tensor Inputs, Tensor Labels)>? dataIterator = null, bool returnLogits = false,
        bool computeLoss = true, string? reduceOutput = "avg", bool bcastLoss = true, int? numMicroBatches = null)
    {
        if (reduceOutput is not (null or "avg"))
            throw new ArgumentException($"reduceOutput '{reduceOutput}' is not supported: use \"avg\" (mean over micro-batches and replicas) or null (each micro-batch's loss)", nameof(reduceOutput));
        int micro = numMicroBatches ?? MicroBatches;
        if (micro < 1) throw new ArgumentOutOfRangeException(nameof(numMicroBatches), $"numMicroBatches must be ≥ 1, got {micro}");
        if (computeLoss && pipe.LossFn == null) throw new InvalidOperationException("EvalBatch with computeLoss needs the PipelineModule's lossFn (or pass computeLoss: false)");
        if (dataIterator != null) this.dataIterator = dataIterator;
        bool wasTraining = Module.training;
        Module.eval();
        try
        {
            var run = new ScheduleRun(this, InferenceScheduleForThisStage(micro), training: false, computeLoss, keepOutputs: returnLogits);
            run.Execute();
            double? loss = null;
            if (computeLoss && reduceOutput == "avg")
            {
                double local = IsLastStage() ? MeanOverDataParallel(run.MicroBatchLosses.Sum() / micro) : 0;
                if (bcastLoss) loss = BroadcastFromLastStage([local])[0];
                else if (IsLastStage()) loss = local;
            }
            return new PipelineEvalResult(loss,
                IsLastStage() && computeLoss && reduceOutput == null ? run.MicroBatchLosses : null,
                IsLastStage() && returnLogits ? run.Outputs : null);
        }
        finally
        {
            Module.train(wasTraining);
        }
    }

    /// <summary>The schedule <see cref="EvalBatch"/> runs on this stage for <paramref name="microBatches"/> micro-batches.</summary>
    public PipeSchedule InferenceScheduleForThisStage(int? microBatches = null) => pipe.VirtualStages > 1
        ? new InterleavedSchedule(microBatches ?? MicroBatches, NumStages, StageId, pipe.VirtualStages, forwardOnly: true)
        : new InferenceSchedule(microBatches ?? MicroBatches, NumStages, StageId);
}
