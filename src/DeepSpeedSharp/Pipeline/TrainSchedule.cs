namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// DeepSpeed's <c>TrainSchedule</c>: 1F1B (PipeDream-Flush). After a warm-up of forwards each stage alternates one
/// forward and one backward, so at most (stages − stage) micro-batches are in flight on a stage; the batch ends with
/// the tied-gradient reduction, the data-parallel reduction and the optimizer step. Convergence is that of data
/// parallelism with the same batch (gradient accumulation over the micro-batches). Even and odd stages take forward
/// and backward steps in opposite phases, which pairs every send with a receive of the same step.
/// </summary>
public sealed class TrainSchedule(int microBatches, int stages, int stageId) : PipeSchedule(microBatches, stages, stageId)
{
    /// <inheritdoc/>
    public override IEnumerable<IReadOnlyList<PipeInstruction>> Steps()
    {
        int prevMicroBatch = -1;
        int totalSteps = 2 * (MicroBatches + Stages - 1);
        for (int step = 0; step < totalSteps; step++)
        {
            var (microBatch, isForward) = StepToMicroBatch(step);
            int prevBuffer = ValidMicroBatch(prevMicroBatch) ? BufferIndex(prevMicroBatch) : -1;
            int currBuffer = ValidMicroBatch(microBatch) ? BufferIndex(microBatch) : -1;
            var cmds = new List<PipeInstruction>();

            // Exchange activations and gradients with the neighbours.
            if (isForward)
            {
                if (ValidMicroBatch(microBatch) && ValidStage(StageId - 1)) cmds.Add(new RecvActivation(currBuffer));
                if (ValidMicroBatch(prevMicroBatch) && ValidStage(StageId - 1)) cmds.Add(new SendGrad(prevBuffer));
            }
            else
            {
                if (ValidMicroBatch(prevMicroBatch) && ValidStage(StageId + 1)) cmds.Add(new SendActivation(prevBuffer));
                if (ValidMicroBatch(microBatch) && ValidStage(StageId + 1)) cmds.Add(new RecvGrad(currBuffer));
            }

            // The first and last stages load data (inputs, labels).
            if ((IsFirstStage || IsLastStage) && isForward && ValidMicroBatch(microBatch)) cmds.Add(new LoadMicroBatch(currBuffer));

            if (ValidMicroBatch(microBatch))
                cmds.Add(isForward ? new ForwardPass(currBuffer) : new BackwardPass(currBuffer));

            if (step == totalSteps - 1)
            {
                cmds.Add(new ReduceTiedGrads());
                cmds.Add(new ReduceGrads());
                cmds.Add(new OptimizerStep());
            }
            prevMicroBatch = microBatch;
            yield return cmds;
        }
    }

    /// <summary>As many buffers as the distance from this stage to the last (at least 2, at most the micro-batches).</summary>
    public override int NumPipeBuffers() => Math.Max(2, Math.Min(Stages - StageId + 1, MicroBatches));

    private (int MicroBatch, bool IsForward) StepToMicroBatch(int step)
    {
        bool evenStep = step % 2 == 0, evenStage = StageId % 2 == 0;
        if (evenStep && evenStage) return (step / 2 - StageId / 2, true);
        if (!evenStep && !evenStage) return ((step - 1) / 2 - StageId / 2, true);
        if (evenStep) return (step / 2 - Stages + (StageId + 1) / 2, false);  // odd stage, backward
        return ((step - 1) / 2 - Stages + 1 + StageId / 2, false);            // even stage, backward
    }
}
