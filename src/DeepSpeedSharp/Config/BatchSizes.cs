namespace DeepSpeedSharp.Config;

/// <summary>
/// The three resolved batch-size numbers. Invariant:
/// <c>TrainBatchSize == MicroBatchPerGpu × GradientAccumulationSteps × data-parallel world size</c>.
/// </summary>
/// <param name="TrainBatchSize">Global batch size (samples per optimizer step across all data-parallel ranks).</param>
/// <param name="MicroBatchPerGpu">Samples per forward/backward pass on one rank.</param>
/// <param name="GradientAccumulationSteps">Micro-batches accumulated per optimizer step.</param>
public sealed record BatchSizes(int TrainBatchSize, int MicroBatchPerGpu, int GradientAccumulationSteps);
