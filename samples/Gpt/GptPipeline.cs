using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Samples.Gpt.Data;
using DeepSpeedSharp.Samples.Gpt.Model;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>
/// The sample's pipeline-parallel path (<c>--pipeline-model-parallel-size P</c> &gt; 1), DeepSpeed's way: the model is
/// written as pipeline layers (<see cref="GptPipeLayers"/>: embedding, blocks, head), split into P stages by a
/// <see cref="PipelineModule"/> over <c>PipelineParallelGrid.Create(P, 1)</c> (the remaining ranks are data
/// parallelism), and trained with <see cref="PipelineEngine.TrainBatch"/>, one call per optimizer step.
/// <para>Initial weights: every rank builds the whole <see cref="GptModel"/> from <c>--seed</c> (and loads
/// <c>--init-weights</c> into it) exactly as a run without pipeline parallelism does, each stage copies its layers'
/// tensors out of it by name, and the whole model is dropped — so a pipeline run starts from the same weights as the
/// unsplit model. <c>--save-weights</c> collects the stages on rank 0 into a file with GptModel's names.</para>
/// </summary>
public sealed class GptPipeline
{
    private readonly GptConfig shape;
    private readonly GptPipeLayers layers;
    private readonly PipelineModule module;
    private readonly IReadOnlyList<string> parameterNames;

    private GptPipeline(GptConfig shape, GptPipeLayers layers, PipelineModule module, IReadOnlyList<string> parameterNames, PipelineEngine engine)
    {
        this.shape = shape;
        this.layers = layers;
        this.module = module;
        this.parameterNames = parameterNames;
        Engine = engine;
    }

    /// <summary>This rank's engine: it trains this rank's stage.</summary>
    public PipelineEngine Engine { get; }

    /// <summary>
    /// Lays the ranks out in <paramref name="options"/>' pipeline stages, builds this rank's stage with the weights of
    /// <paramref name="whole"/> (which the caller may then dispose) and initialises the engine.
    /// </summary>
    /// <param name="options">The command line (pipeline size, activation checkpointing, micro-batch, seed).</param>
    /// <param name="whole">The unsplit model, built from the seed and --init-weights as without pipeline parallelism.</param>
    /// <param name="config">The DeepSpeed config.</param>
    /// <param name="optimizerFactory">The sample's own optimizer when the config has none.</param>
    public static GptPipeline Initialize(GptOptions options, GptModel whole, DeepSpeedConfig config,
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
        PipelineWeights.CopyStage(whole, module, layers.ToPipelineName);
        var names = whole.named_parameters().Select(p => p.name).ToList();
        var engine = DeepSpeed.Initialize(module, config: config, optimizerFactory: optimizerFactory,
            trainMicroBatchSizePerGpu: options.MicroBatch, seed: options.Seed).PipelineEngine;
        return new GptPipeline(options.Model, layers, module, names, engine);
    }

    /// <summary>
    /// One optimizer step: <c>TrainBatch</c> over the micro-batches the sample's loop without pipeline parallelism takes
    /// at <paramref name="step"/> on this data-parallel rank. Returns the loss averaged over the global batch, on every rank.
    /// </summary>
    public double TrainStep(long step, BatchSampler sampler)
    {
        double loss = PipelineSteps.TrainStep(Engine, sampler, step);
        timings.Add(Engine.LastBatchTimings!);
        return loss;
    }

    /// <summary>
    /// The summary fields of this rank's stage: the pipeline size, the stage, and the bubble measured over the steps after
    /// <paramref name="warmupSteps"/> (the share of the schedule's time the stage did not compute) next to the 1F1B
    /// schedule's (p − 1) / (m + p − 1).
    /// </summary>
    public Dictionary<string, object?> SummaryFields(int warmupSteps)
    {
        var measured = timings.Skip(Math.Min(warmupSteps, Math.Max(0, timings.Count - 1))).ToList();
        double schedule = measured.Sum(t => t.PipelineSeconds), compute = measured.Sum(t => t.ComputeSeconds);
        return new Dictionary<string, object?>
        {
            ["pipeline_parallel_size"] = Engine.NumStages, ["virtual_stages"] = Engine.PipelineModule.VirtualStages,
            ["stage"] = Engine.StageId, ["micro_batches"] = Engine.MicroBatches,
            ["bubble"] = schedule > 0 ? 1 - compute / schedule : null,
            ["bubble_theory"] = measured.Count > 0 ? measured[0].TheoreticalBubbleFraction : null,
        };
    }

    private readonly List<PipelineBatchTimings> timings = new();

    /// <summary>
    /// <c>--save-weights</c>: collects every stage's weights on rank 0 and saves them there with <see cref="GptModel"/>'s
    /// names, in the model's dtype — the file the sample without pipeline parallelism writes. Call on every rank.
    /// </summary>
    public void SaveWeights(string path)
    {
        using var whole = Engine.GlobalRank == 0 ? new GptModel(shape) : null;
        PipelineWeights.GatherToRankZero(module, whole, layers.ToPipelineName, parameterNames);
        if (whole != null) ModuleWeights.Save(whole, path, module.parameters().First().dtype);
    }
}
