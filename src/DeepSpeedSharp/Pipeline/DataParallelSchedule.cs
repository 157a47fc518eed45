namespace DeepSpeedSharp.Pipeline;

/// <summary>DeepSpeed's <c>DataParallelSchedule</c>: one stage, gradient accumulation over the micro-batches, then reduce and step.</summary>
public sealed class DataParallelSchedule(int microBatches, int stages, int stageId) : PipeSchedule(microBatches, stages, stageId)
{
    /// <inheritdoc/>
    public override IEnumerable<IReadOnlyList<PipeInstruction>> Steps()
    {
        for (int step = 0; step < MicroBatches; step++)
        {
            var cmds = new List<PipeInstruction> { new LoadMicroBatch(0), new ForwardPass(0), new BackwardPass(0) };
            if (step == MicroBatches - 1)
            {
                cmds.Add(new ReduceGrads());
                cmds.Add(new OptimizerStep());
            }
            yield return cmds;
        }
    }

    /// <summary>One buffer.</summary>
    public override int NumPipeBuffers() => 1;
}
