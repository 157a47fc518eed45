namespace DeepSpeedSharp.Config;

/// <summary>
/// A DeepSpeed config could not be read or is invalid. The message names the offending key (with its path,
/// e.g. <c>zero_optimization.stage</c>), the value, and what would be accepted.
/// </summary>
public sealed class DeepSpeedConfigException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public DeepSpeedConfigException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public DeepSpeedConfigException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The three resolved batch-size numbers. Invariant:
/// <c>TrainBatchSize == MicroBatchPerGpu × GradientAccumulationSteps × data-parallel world size</c>.
/// </summary>
/// <param name="TrainBatchSize">Global batch size (samples per optimizer step across all data-parallel ranks).</param>
/// <param name="MicroBatchPerGpu">Samples per forward/backward pass on one rank.</param>
/// <param name="GradientAccumulationSteps">Micro-batches accumulated per optimizer step.</param>
public sealed record BatchSizes(int TrainBatchSize, int MicroBatchPerGpu, int GradientAccumulationSteps);
