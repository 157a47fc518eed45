namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// One instruction of a pipeline schedule (DeepSpeed's <c>PipeInstruction</c>): the schedule is data, so it can be
/// printed, tested and executed by an engine. <see cref="ToString"/> prints DeepSpeed's form, e.g. <c>ForwardPass(buffer_id=1)</c>.
/// </summary>
public abstract record PipeInstruction
{
    /// <summary>The instruction's name (DeepSpeed's class name).</summary>
    public string Name => GetType().Name;

    /// <summary>DeepSpeed's keyword arguments, e.g. <c>buffer_id=1</c>.</summary>
    protected virtual string Arguments => "";

    /// <inheritdoc/>
    public sealed override string ToString() => $"{Name}({Arguments})";
}

/// <summary>An instruction on one of the stage's pipeline buffers (DeepSpeed's <c>BufferOpInstruction</c>).</summary>
/// <param name="BufferId">The buffer the micro-batch lives in.</param>
/// <param name="Chunk">The stage's model chunk (virtual stage) it applies to; 0 without virtual stages.</param>
public abstract record BufferOpInstruction(int BufferId, int Chunk = 0) : PipeInstruction
{
    /// <inheritdoc/>
    protected override string Arguments => Chunk == 0 ? $"buffer_id={BufferId}" : $"buffer_id={BufferId}, chunk={Chunk}";
}

/// <summary>Load a micro-batch into a buffer (first stage: inputs; last stage: labels).</summary>
public sealed record LoadMicroBatch(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Run this stage's layers on a buffer's input.</summary>
public sealed record ForwardPass(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Back-propagate a buffer's output (the loss on the last stage, the received gradient elsewhere).</summary>
public sealed record BackwardPass(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Send a buffer's output activation to the next stage (paired with its <see cref="RecvActivation"/>).</summary>
public sealed record SendActivation(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Receive a buffer's input activation from the previous stage.</summary>
public sealed record RecvActivation(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Send the gradient of a buffer's input to the previous stage (paired with its <see cref="RecvGrad"/>).</summary>
public sealed record SendGrad(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Receive the gradient of a buffer's output from the next stage.</summary>
public sealed record RecvGrad(int BufferId, int Chunk = 0) : BufferOpInstruction(BufferId, Chunk);

/// <summary>Sum the gradients of tied weights (e.g. embedding and LM head) over the stages that hold them.</summary>
public sealed record ReduceTiedGrads : PipeInstruction;

/// <summary>Reduce the stage's gradients over its data-parallel group.</summary>
public sealed record ReduceGrads : PipeInstruction;

/// <summary>Step the optimizer and zero the gradients.</summary>
public sealed record OptimizerStep : PipeInstruction;
