namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// The interleaved 1F1B schedule with virtual stages (Megatron-LM's <c>forward_backward_pipelining_with_interleaving</c>;
/// beyond DeepSpeed): the model is split into stages × v parts, stage s holding parts s, s + stages, … as its chunks
/// 0 … v − 1. A stage runs a warm-up of forward passes, then alternates one forward and one backward, then the remaining
/// backwards; the bubble shrinks from (p − 1) / (m + p − 1) to about (p − 1) / (v·m + p − 1) at the price of v times as
/// many stage-to-stage messages. Virtual micro-batch k is micro-batch (k div (p·v))·p + k mod p of chunk
/// (k mod (p·v)) div p (forward; the backward order visits the chunks in reverse). With more than one chunk, the
/// micro-batches must be a multiple of the stages. Each step is one forward or backward pass with its receive before and its send after; activations
/// always go to the next stage (the last stage's chunk c to the first stage's chunk c + 1) and gradients to the previous.
/// <para>With one chunk it is the plain 1F1B schedule written in this form (any number of micro-batches), which the engine
/// uses when stages run ahead (<c>pipeline.run_ahead_micro_batches</c> k &gt; 0, one chunk only; beyond DeepSpeed and
/// Megatron, whose interleaved warm-up already has one pass of slack per later stage): each
/// stage starts k more forward passes per later stage before its first backward, (stages − stage − 1)·(1 + k) in all,
/// so the next stage finds its input waiting and a stage that computes a little slower for a while does not stall the
/// whole pipeline. In DeepSpeed's 1F1B two equal stages have no slack at all: every delay of either stage delays both.
/// The price is k more micro-batches' activations held per later stage.</para>
/// </summary>
public sealed class InterleavedSchedule : PipeSchedule
{
    /// <param name="microBatches">Micro-batches in one batch (a multiple of <paramref name="stages"/>).</param>
    /// <param name="stages">Pipeline stages.</param>
    /// <param name="stageId">The stage that executes this schedule.</param>
    /// <param name="chunks">Virtual stages (model chunks) per stage.</param>
    /// <param name="forwardOnly">Forward passes only (evaluation).</param>
    /// <param name="runAhead">Extra forward passes per later stage before the first backward (0 = no run-ahead).</param>
    public InterleavedSchedule(int microBatches, int stages, int stageId, int chunks, bool forwardOnly = false, int runAhead = 0)
        : base(microBatches, stages, stageId)
    {
        if (chunks < 1) throw new ArgumentOutOfRangeException(nameof(chunks), $"virtual stages must be ≥ 1, got {chunks}");
        if (runAhead < 0) throw new ArgumentOutOfRangeException(nameof(runAhead), $"run-ahead micro-batches must be ≥ 0, got {runAhead}");
        if (runAhead > 0 && chunks > 1)
            throw new ArgumentException($"pipeline.run_ahead_micro_batches {runAhead} does not combine with {chunks} virtual stages: a stage's later chunks wait for the " +
                                        "last stage's earlier ones, so running ahead would deadlock; set it to 0 or use one virtual stage");
        if (chunks > 1 && microBatches % stages != 0)
            throw new ArgumentException($"the interleaved schedule needs the micro-batches (gradient_accumulation_steps {microBatches}) to be a multiple of the pipeline stages ({stages})");
        this.chunks = chunks;
        ForwardOnly = forwardOnly;
        RunAhead = runAhead;
    }

    private readonly int chunks;

    /// <summary>Virtual stages per stage.</summary>
    public override int Chunks => chunks;

    /// <summary>True for an evaluation schedule.</summary>
    public bool ForwardOnly { get; }

    /// <summary>Extra forward passes per later stage that this stage runs before its first backward.</summary>
    public int RunAhead { get; }

    /// <summary>Forward passes before the first backward on this stage: Megatron's (stages − stage − 1)·2 + (chunks − 1)·stages
    /// with virtual stages (all of them when micro-batches equal stages); with one chunk 1F1B's stages − stage − 1, times
    /// 1 + <see cref="RunAhead"/>.</summary>
    public int WarmupPasses
    {
        get
        {
            int later = Stages - StageId - 1;
            if (ForwardOnly || (Chunks > 1 && MicroBatches == Stages)) return Passes;
            return Math.Min(Passes, Chunks > 1 ? later * 2 + (Chunks - 1) * Stages : later * (1 + RunAhead));
        }
    }

    /// <summary>The chunk and micro-batch of virtual micro-batch <paramref name="k"/>.</summary>
    public (int Chunk, int MicroBatch) At(int k, bool forward)
    {
        int group = Stages * Chunks, chunk = k % group / Stages;
        return (forward ? chunk : Chunks - 1 - chunk, k / group * Stages + k % Stages);
    }

    /// <inheritdoc/>
    public override IEnumerable<IReadOnlyList<PipeInstruction>> Steps()
    {
        int warmup = WarmupPasses, steady = Passes - warmup;
        var steps = new List<List<PipeInstruction>>();
        for (int k = 0; k < warmup; k++) steps.Add(Forward(k));
        for (int k = 0; k < steady; k++)
        {
            steps.Add(Forward(k + warmup));
            if (!ForwardOnly) steps.Add(Backward(k));
        }
        if (!ForwardOnly)
        {
            for (int k = steady; k < Passes; k++) steps.Add(Backward(k));
            steps[^1].AddRange([new ReduceTiedGrads(), new ReduceGrads(), new OptimizerStep()]);
        }
        return steps;
    }

    /// <summary>Buffers: one per micro-batch and chunk.</summary>
    public override int NumPipeBuffers() => MicroBatches;

    private List<PipeInstruction> Forward(int k)
    {
        var (chunk, mb) = At(k, forward: true);
        var cmds = new List<PipeInstruction>();
        if (IsFirstPart(chunk) || IsLastPart(chunk)) cmds.Add(new LoadMicroBatch(mb, chunk));
        if (!IsFirstPart(chunk)) cmds.Add(new RecvActivation(mb, chunk));
        cmds.Add(new ForwardPass(mb, chunk));
        if (!IsLastPart(chunk)) cmds.Add(new SendActivation(mb, chunk));
        return cmds;
    }

    private List<PipeInstruction> Backward(int k)
    {
        var (chunk, mb) = At(k, forward: false);
        var cmds = new List<PipeInstruction>();
        if (!IsLastPart(chunk)) cmds.Add(new RecvGrad(mb, chunk));
        cmds.Add(new BackwardPass(mb, chunk));
        if (!IsFirstPart(chunk)) cmds.Add(new SendGrad(mb, chunk));
        return cmds;
    }
}
