using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Samples.Llama.Data;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// The sample's pipeline-parallel path (<c>--pipeline-model-parallel-size P</c> &gt; 1), DeepSpeed's way: the model is
/// written as pipeline layers (<see cref="LlamaPipeLayers"/>: embedding, blocks, head, tensor-parallel over the grid's
/// tensor ranks), split into P stages by a <see cref="PipelineModule"/> over the trainer's
/// <c>PipelineParallelGrid.Create(P, T)</c>, and trained with <see cref="PipelineEngine.TrainBatch"/>, one call per step.
/// <para>Initial weights: every rank builds the whole <see cref="LlamaModel"/> (its tensor slices) from <c>--seed</c>
/// (and loads <c>--init-weights</c> into it) exactly as a run without pipeline parallelism does, each stage copies its
/// layers' tensors out of it by name, and the whole model is dropped — so a pipeline run starts from the unsplit model's
/// weights. With <c>--sequence-parallel</c> the activations differ across tensor ranks, so they cannot be sent between
/// stages in tensor slices: <c>pipeline.pipe_partitioned</c> and <c>grad_partitioned</c> are set to false, as the Gaudi
/// guide requires.</para>
/// </summary>
public sealed class LlamaPipeline
{
    private readonly LlamaConfig shape;
    private readonly LlamaLayers factory;
    private readonly LlamaPipeLayers layers;
    private readonly PipelineModule module;
    private readonly IReadOnlyList<string> parameterNames;

    private LlamaPipeline(LlamaConfig shape, LlamaLayers factory, LlamaPipeLayers layers, PipelineModule module,
        IReadOnlyList<string> parameterNames, PipelineEngine engine)
    {
        this.shape = shape;
        this.factory = factory;
        this.layers = layers;
        this.module = module;
        this.parameterNames = parameterNames;
        Engine = engine;
    }

    /// <summary>This rank's engine: it trains this rank's stage.</summary>
    public PipelineEngine Engine { get; }

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
    public static LlamaPipeline Initialize(LlamaOptions options, LlamaConfig shape, LlamaLayers factory, PipelineParallelGrid grid,
        LlamaModel whole, DeepSpeedConfig config, Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory)
    {
        if (factory.SequenceParallel) config = WholeTensorsBetweenStages(config, grid.GlobalRank == 0);
        var layers = new LlamaPipeLayers(shape, factory);
        if (options.CheckpointActivations > 0) DeepSpeed.Checkpointing.Configure(grid, config);
        var module = new PipelineModule(layers.Specs(), grid, layers.Loss, activationCheckpointInterval: options.CheckpointActivations);
        PipelineWeights.CopyStage(whole, module, layers.ToPipelineName);
        var names = whole.named_parameters().Select(p => p.name).ToList();
        var engine = DeepSpeed.Initialize(module, config: config, optimizerFactory: optimizerFactory,
            trainMicroBatchSizePerGpu: options.MicroBatch, seed: options.Seed).PipelineEngine;
        return new LlamaPipeline(shape, factory, layers, module, names, engine);
    }

    /// <summary>
    /// One optimizer step: <c>TrainBatch</c> over the micro-batches the sample's loop without pipeline parallelism takes
    /// at <paramref name="step"/> on this data-parallel rank. Returns the loss averaged over the global batch, on every rank.
    /// </summary>
    public double TrainStep(long step, BatchSampler sampler) => PipelineSteps.TrainStep(Engine, sampler, step);

    /// <summary>
    /// <c>--save-weights</c> (one tensor rank only): collects every stage's weights on rank 0 and saves them there with
    /// <see cref="LlamaModel"/>'s names, in the model's dtype. Call on every rank.
    /// </summary>
    public void SaveWeights(string path)
    {
        using var whole = Engine.GlobalRank == 0 ? new LlamaModel(shape, factory) : null;
        PipelineWeights.GatherToRankZero(module, whole, layers.ToPipelineName, parameterNames);
        if (whole != null) ModuleWeights.Save(whole, path, module.parameters().First().dtype);
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
