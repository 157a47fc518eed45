using DeepSpeedSharp.Config;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Samples.Gpt.Model;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Topology;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>
/// The sample's pipeline-parallel path (<c>--pipeline-model-parallel-size P</c> &gt; 1): the model as pipeline layers
/// (<see cref="GptPipeLayers"/>: embedding, blocks, head), split into P stages (× <c>--virtual-pipeline-model-parallel-size</c>
/// chunks) by a <see cref="PipelineModule"/> over <c>PipelineParallelGrid.Create(P, 1)</c> (the remaining ranks are data
/// parallelism), trained through a <see cref="SamplePipeline"/> (which starts every stage from the whole model's weights).
/// </summary>
public static class GptPipeline
{
    /// <summary>
    /// Lays the ranks out in <paramref name="options"/>' pipeline stages, builds this rank's stage with the weights of
    /// <paramref name="whole"/> (which the caller may then dispose) and initialises the engine.
    /// </summary>
    /// <param name="options">The command line (pipeline size, activation checkpointing, micro-batch, seed).</param>
    /// <param name="whole">The unsplit model, built from the seed and --init-weights as without pipeline parallelism.</param>
    /// <param name="config">The DeepSpeed config.</param>
    /// <param name="optimizerFactory">The sample's own optimizer when the config has none.</param>
    public static SamplePipeline Initialize(GptOptions options, GptModel whole, DeepSpeedConfig config,
        Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory)
    {
        if (!Comm.Dist.IsInitialized) Comm.Dist.Initialize();
        int world = Comm.Dist.WorldSize, stages = options.PipelineModelParallelSize;
        if (world % stages != 0)
            throw new ArgumentException($"--pipeline-model-parallel-size {stages} must divide the number of ranks {world} (the rest is data parallelism)");
        var layers = new GptPipeLayers(options.Model);
        var grid = PipelineParallelGrid.Create(stages, 1); // kept for the life of the process: the engine works on it
        if (options.CheckpointActivations > 0) DeepSpeed.Checkpointing.Configure(grid, config);
        var module = new PipelineModule(layers.Specs(), grid, layers.Loss, activationCheckpointInterval: options.CheckpointActivations,
            virtualStages: options.VirtualPipelineModelParallelSize);
        return SamplePipeline.Initialize(module, whole, layers.ToPipelineName, config, optimizerFactory,
            options.MicroBatch, options.Seed);
    }
}
