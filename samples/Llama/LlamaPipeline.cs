using DeepSpeedSharp.Config;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// The sample's pipeline-parallel path (<c>--pipeline-model-parallel-size P</c> &gt; 1): the model as pipeline layers
/// (<see cref="LlamaPipeLayers"/>: embedding, blocks, head, tensor-parallel over the grid's tensor ranks), split into P
/// stages by a <see cref="PipelineModule"/> over the trainer's <c>PipelineParallelGrid.Create(P, T)</c>, trained through a
/// <see cref="SamplePipeline"/> (which starts every stage from the whole model's weights, its tensor slices here).
/// <para>With <c>--sequence-parallel</c> the activations differ across tensor ranks, so they cannot be sent between
/// stages in tensor slices: <c>pipeline.pipe_partitioned</c> and <c>grad_partitioned</c> are set to false, as the Gaudi
/// guide requires.</para>
/// </summary>
public static class LlamaPipeline
{
    /// <summary>
    /// Builds this rank's stage of <paramref name="grid"/> with the weights of <paramref name="whole"/> (which the caller
    /// may then dispose) and initialises the engine.
    /// </summary>
    /// <param name="options">The command line (activation checkpointing, micro-batch, seed).</param>
    /// <param name="shape">The model's shape, with its vocabulary.</param>
    /// <param name="factory">The layer factory the whole model was built with (the grid's tensor group, sequence parallelism).</param>
    /// <param name="grid">The pipe × data × tensor layout; the caller keeps it alive while training.</param>
    /// <param name="whole">The unsplit model, built from the seed and --init-weights as without pipeline parallelism.</param>
    /// <param name="config">The DeepSpeed config.</param>
    /// <param name="optimizerFactory">The sample's own optimizer when the config has none.</param>
    /// <param name="loadWeights">Loads --hf-model / --init-weights into this rank's stage (only its tensors are read), or null.</param>
    public static SamplePipeline Initialize(LlamaOptions options, LlamaConfig shape, LlamaLayers factory, PipelineParallelGrid grid,
        LlamaModel whole, DeepSpeedConfig config, Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory,
        Action<PipelineModule>? loadWeights = null)
    {
        if (factory.SequenceParallel) config = WholeTensorsBetweenStages(config, grid.GlobalRank == 0);
        var layers = new LlamaPipeLayers(shape, factory);
        if (options.CheckpointActivations > 0) DeepSpeed.Checkpointing.Configure(grid, config);
        var module = new PipelineModule(layers.Specs(), grid, layers.Loss, activationCheckpointInterval: options.CheckpointActivations);
        return SamplePipeline.Initialize(module, whole, layers.ToPipelineName, config, optimizerFactory,
            options.MicroBatch, options.Seed, loadWeights);
    }

    /// <summary>
    /// The config with <c>pipeline.pipe_partitioned</c> and <c>grad_partitioned</c> false: sequence-parallel activations
    /// are different on each tensor rank, so each rank sends its own whole tensor to the next stage.
    /// </summary>
    private static DeepSpeedConfig WholeTensorsBetweenStages(DeepSpeedConfig config, bool report)
    {
        if (!config.Pipeline.PipePartitioned && !config.Pipeline.GradPartitioned) return config;
        if (report)
            Console.WriteLine("llama: --sequence-parallel with pipeline stages: pipeline.pipe_partitioned and grad_partitioned set to false " +
                              "(each tensor rank holds a different slice of the sequence, so activations go between stages whole)");
        return config.WithPipeline(config.Pipeline with { PipePartitioned = false, GradPartitioned = false });
    }
}
