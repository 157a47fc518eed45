using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Weights;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// A sample's pipeline-parallel path, DeepSpeed's way: its model written as pipeline layers in a
/// <see cref="PipelineModule"/>, trained with <see cref="PipelineEngine.TrainBatch"/>, one call per optimizer step.
/// Initial weights: every rank builds the whole model from the seed (and <c>--init-weights</c>) exactly as a run without
/// pipeline parallelism does, each stage copies its layers' tensors out of it by name, and the whole model is dropped —
/// so a pipeline run starts from the unsplit model's weights. <c>--save-weights</c> writes one file with the whole model's
/// names (stages and tensor slices gathered).
/// </summary>
public sealed class SamplePipeline
{
    private readonly PipelineModule module;
    private readonly List<PipelineBatchTimings> timings = new();

    private SamplePipeline(PipelineModule module, PipelineEngine engine)
    {
        this.module = module;
        Engine = engine;
    }

    /// <summary>This rank's engine: it trains this rank's stage.</summary>
    public PipelineEngine Engine { get; }

    /// <summary>
    /// Copies <paramref name="whole"/>'s weights into this rank's stage of <paramref name="module"/> (the caller may then
    /// dispose it) and initialises the engine.
    /// </summary>
    /// <param name="module">This rank's stage.</param>
    /// <param name="whole">The unsplit model, built from the seed and --init-weights as without pipeline parallelism.</param>
    /// <param name="toPipelineName">The whole model's parameter name → the pipeline module's.</param>
    /// <param name="config">The DeepSpeed config.</param>
    /// <param name="optimizerFactory">The sample's own optimizer when the config has none.</param>
    /// <param name="microBatch">--micro-batch.</param>
    /// <param name="seed">--seed.</param>
    /// <param name="loadWeights">Loads whole-model weights into the stage (by the unsplit model's names, reading only the
    /// stage's tensors) before the engine takes it; null to keep <paramref name="whole"/>'s.</param>
    public static SamplePipeline Initialize(PipelineModule module, nn.Module whole, Func<string, string> toPipelineName,
        DeepSpeedConfig config, Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory, int? microBatch, int seed,
        Action<PipelineModule>? loadWeights = null)
    {
        PipelineWeights.CopyStage(whole, module, toPipelineName);
        // Checkpoints and --save-weights write the unsplit model's names.
        module.ModelNames = whole.named_parameters().ToDictionary(p => toPipelineName(p.name), p => p.name, StringComparer.Ordinal);
        loadWeights?.Invoke(module);
        var engine = DeepSpeed.Initialize(module, config: config, optimizerFactory: optimizerFactory,
            trainMicroBatchSizePerGpu: microBatch, seed: seed).PipelineEngine;
        return new SamplePipeline(module, engine);
    }

    /// <summary>
    /// One optimizer step: <c>TrainBatch</c> over the micro-batches the sample's loop without pipeline parallelism takes at
    /// <paramref name="step"/> on this data-parallel rank (the first stage reads their inputs, the last stage their
    /// targets, the stages between read nothing). Returns the loss averaged over the global batch, on every rank.
    /// </summary>
    public double TrainStep(long step, WindowBatchSampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        bool reads = Engine.IsFirstStage() || Engine.IsLastStage();
        double loss = Engine.TrainBatch(reads ? MicroBatches(sampler, step) : null);
        timings.Add(Engine.LastBatchTimings!);
        return loss;
    }

    private IEnumerator<(Tensor Inputs, Tensor Labels)> MicroBatches(WindowBatchSampler sampler, long step)
    {
        int dpRank = Engine.GetDataParallelRank(), gas = Engine.GradientAccumulationSteps, mb = Engine.TrainMicroBatchSizePerGpu;
        for (int micro = 0; micro < gas; micro++)
            yield return sampler.MicroBatch(step, dpRank, micro, mb, gas, Engine.TrainBatchSize);
    }

    /// <summary>
    /// The summary fields of this rank's stage: the pipeline size, the stage, and the bubble measured over the steps after
    /// <paramref name="warmupSteps"/> (the share of the pipeline's flush time the stage did not compute) next to the
    /// schedule's ideal (p − 1) / (v·m + p − 1).
    /// </summary>
    public Dictionary<string, object?> SummaryFields(int warmupSteps)
    {
        var measured = timings.Skip(Math.Min(warmupSteps, Math.Max(0, timings.Count - 1))).ToList();
        double schedule = measured.Sum(t => t.PipelineSeconds), compute = measured.Sum(t => t.ComputeSeconds);
        double idle = measured.Sum(t => t.IdleSeconds);
        return new Dictionary<string, object?>
        {
            ["pipeline_parallel_size"] = Engine.NumStages, ["virtual_stages"] = module.VirtualStages,
            ["stage"] = Engine.StageId, ["micro_batches"] = Engine.MicroBatches,
            ["bubble"] = schedule > 0 ? 1 - compute / schedule : null,
            ["bubble_idle"] = schedule > 0 ? idle / schedule : null,
            ["bubble_theory"] = measured.Count > 0 ? measured[0].TheoreticalBubbleFraction : null,
        };
    }

    /// <summary>
    /// <c>--save-weights</c>: <see cref="WholeModelWeights.Save"/> — every stage's weights (tensor slices gathered) written
    /// once by rank 0 under the whole model's names, in the model's dtype: the file the sample without pipeline
    /// parallelism writes. Call on every rank.
    /// </summary>
    public void SaveWeights(string path) =>
        WholeModelWeights.Save(module, path); // under the module's ModelNames
}
