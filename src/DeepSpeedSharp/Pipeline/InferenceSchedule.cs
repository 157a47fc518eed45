namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// DeepSpeed's <c>InferenceSchedule</c>: forward passes only, micro-batch m on stage s at step m + s, with two buffers
/// alternating between receiving and sending (even and odd stages in opposite order, so sends and receives pair up).
/// </summary>
public sealed class InferenceSchedule(int microBatches, int stages, int stageId) : PipeSchedule(microBatches, stages, stageId)
{
    /// <inheritdoc/>
    public override IEnumerable<IReadOnlyList<PipeInstruction>> Steps()
    {
        int totalSteps = MicroBatches + Stages - 1;
        bool evenStage = StageId % 2 == 0;
        for (int step = 0; step < totalSteps; step++)
        {
            var cmds = new List<PipeInstruction>();
            int microBatch = step - StageId;
            int recvBuffer = evenStage ? step % 2 : (step + 1) % 2;
            int sendBuffer = evenStage ? (step + 1) % 2 : step % 2;
            if ((IsFirstStage || IsLastStage) && ValidMicroBatch(microBatch)) cmds.Add(new LoadMicroBatch(recvBuffer));
            bool send = ValidStage(StageId + 1) && ValidMicroBatch(microBatch - 1);
            bool recv = ValidStage(StageId - 1) && ValidMicroBatch(microBatch);
            if (evenStage)
            {
                if (send) cmds.Add(new SendActivation(sendBuffer));
                if (recv) cmds.Add(new RecvActivation(recvBuffer));
            }
            else
            {
                if (recv) cmds.Add(new RecvActivation(recvBuffer));
                if (send) cmds.Add(new SendActivation(sendBuffer));
            }
            if (ValidMicroBatch(microBatch)) cmds.Add(new ForwardPass(recvBuffer));
            yield return cmds;
        }
    }

    /// <summary>Two buffers: one receiving, one sending.</summary>
    public override int NumPipeBuffers() => 2;
}
