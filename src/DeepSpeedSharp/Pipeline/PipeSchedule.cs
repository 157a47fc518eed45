namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// DeepSpeed's <c>PipeSchedule</c>: generates, for one stage, the steps that process the micro-batches of one batch.
/// Each step is a list of <see cref="PipeInstruction"/>s and is atomic: a barrier between successive steps cannot
/// deadlock, because every send of a step is paired with a receive on the neighbouring stage in the same step.
/// </summary>
public abstract class PipeSchedule
{
    /// <param name="microBatches">Micro-batches in one batch (gradient_accumulation_steps).</param>
    /// <param name="stages">Pipeline stages.</param>
    /// <param name="stageId">The stage that executes this schedule.</param>
    protected PipeSchedule(int microBatches, int stages, int stageId)
    {
        if (microBatches < 1) throw new ArgumentOutOfRangeException(nameof(microBatches), $"a pipeline schedule needs at least one micro-batch, got {microBatches}");
        if (stages < 1) throw new ArgumentOutOfRangeException(nameof(stages), $"a pipeline needs at least one stage, got {stages}");
        if (stageId < 0 || stageId >= stages) throw new ArgumentOutOfRangeException(nameof(stageId), $"stage {stageId} is outside 0..{stages - 1}");
        MicroBatches = microBatches;
        Stages = stages;
        StageId = stageId;
    }

    /// <summary>Micro-batches in one batch.</summary>
    public int MicroBatches { get; }

    /// <summary>Pipeline stages.</summary>
    public int Stages { get; }

    /// <summary>The stage this schedule is for.</summary>
    public int StageId { get; }

    /// <summary>True on the first stage.</summary>
    public bool IsFirstStage => StageId == 0;

    /// <summary>True on the last stage.</summary>
    public bool IsLastStage => StageId == Stages - 1;

    /// <summary>Model chunks (virtual stages) this stage runs; 1 except for the interleaved schedule.</summary>
    public virtual int Chunks => 1;

    /// <summary>Forward (and backward) passes this stage runs per batch: micro-batches × chunks.</summary>
    public int Passes => MicroBatches * Chunks;

    /// <summary>True when chunk <paramref name="chunk"/> of this stage is the model's first part (it reads the inputs).</summary>
    public bool IsFirstPart(int chunk) => IsFirstStage && chunk == 0;

    /// <summary>True when chunk <paramref name="chunk"/> of this stage is the model's last part (it computes the loss).</summary>
    public bool IsLastPart(int chunk) => IsLastStage && chunk == Chunks - 1;

    /// <summary>The steps of the schedule, each a list of instructions executed in order.</summary>
    public abstract IEnumerable<IReadOnlyList<PipeInstruction>> Steps();

    /// <summary>Pipeline buffers the engine allocates for this stage (micro-batches in flight at once).</summary>
    public virtual int NumPipeBuffers() => MicroBatches;

    /// <summary>The schedule printed one step per line: "step N: Instr(buffer_id=b), ...".</summary>
    public override string ToString() =>
        string.Join('\n', Steps().Select((cmds, i) => $"step {i}: {string.Join(", ", cmds)}"));

    /// <summary>True for a micro-batch of this batch.</summary>
    protected bool ValidMicroBatch(int microBatchId) => microBatchId >= 0 && microBatchId < MicroBatches;

    /// <summary>True for an existing stage.</summary>
    protected bool ValidStage(int stageId) => stageId >= 0 && stageId < Stages;

    /// <summary>The buffer of a micro-batch (cyclic over <see cref="NumPipeBuffers"/>).</summary>
    protected int BufferIndex(int microBatchId) => microBatchId % NumPipeBuffers();
}
