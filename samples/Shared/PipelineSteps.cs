using DeepSpeedSharp.Engine;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// One optimizer step of a sample trained with pipeline parallelism: <see cref="PipelineEngine.TrainBatch"/> over the
/// micro-batches the sample's loop without pipeline parallelism takes at the same step on the same data-parallel rank
/// (<see cref="WindowBatchSampler.MicroBatch"/>), so both see the same global batch.
/// </summary>
public static class PipelineSteps
{
    /// <summary>
    /// Trains one step: the first stage reads the inputs of the gradient_accumulation_steps micro-batches, the last stage
    /// their targets, the stages between read nothing. Returns the loss averaged over the global batch, on every rank.
    /// </summary>
    /// <param name="engine">This rank's pipeline engine.</param>
    /// <param name="sampler">The sample's batch sampler.</param>
    /// <param name="step">The optimizer step (0-based).</param>
    public static double TrainStep(PipelineEngine engine, WindowBatchSampler sampler, long step)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(sampler);
        bool reads = engine.IsFirstStage() || engine.IsLastStage();
        return engine.TrainBatch(reads ? MicroBatches(engine, sampler, step) : null);
    }

    private static IEnumerator<(Tensor Inputs, Tensor Labels)> MicroBatches(PipelineEngine engine, WindowBatchSampler sampler, long step)
    {
        int dpRank = engine.GetDataParallelRank(), gas = engine.GradientAccumulationSteps, mb = engine.TrainMicroBatchSizePerGpu;
        for (int micro = 0; micro < gas; micro++)
            yield return sampler.MicroBatch(step, dpRank, micro, mb, gas, engine.TrainBatchSize);
    }
}
