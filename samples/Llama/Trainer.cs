using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Weights;
using DeepSpeedSharp.Samples.Llama.Data;
using DeepSpeedSharp.Samples.Shared.Text;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// The sample's training loop: tokenise the text, lay the ranks out on a <see cref="PipelineParallelGrid"/>, build
/// the model through <see cref="LlamaLayers"/>, call <c>DeepSpeed.Initialize</c> with the grid as its mpu, then
/// <c>engine.Forward</c> / <c>engine.Backward(loss)</c> / <c>engine.Step()</c> for every micro-step. With
/// <c>--pipeline-model-parallel-size</c> &gt; 1 the model is split into pipeline stages on the same grid instead and each
/// step is one <c>TrainBatch</c> over the same micro-batches (<see cref="LlamaPipeline"/>).
/// </summary>
public sealed class Trainer
{
    /// <summary>Used when no --deepspeed_config is given: micro-batch 8, print every 10 steps.</summary>
    public const string DefaultConfig = """{ "train_micro_batch_size_per_gpu": 8, "steps_per_print": 10 }""";

    private readonly LlamaOptions options;

    /// <param name="options">The parsed command line.</param>
    public Trainer(LlamaOptions options) => this.options = options;

    /// <summary>Trains <c>--steps</c> steps and prints the summary; returns the exit code.</summary>
    public int Run()
    {
        options.RequireAvailableParallelism();
        Shared.SampleMain.StartTorch();
        var config = Config.DeepSpeedConfig.Load(options.DeepSpeedConfig ?? DefaultConfig);
        var corpus = TextCorpus.Load(options.Data ?? TextCorpus.DefaultPath, options.FullVocab);
        var (shape, vocabulary) = Shape(corpus.Vocabulary);
        shape.Validate();

        Comm.Dist.Initialize();
        int world = Comm.Dist.WorldSize, pp = options.PipelineModelParallelSize, tp = options.TensorModelParallelSize;
        if (world % (pp * tp) != 0)
            throw new ArgumentException($"--pipeline-model-parallel-size {pp} × --tensor-model-parallel-size {tp} must divide the number of ranks {world} (the rest is data parallelism)");
        using var grid = PipelineParallelGrid.Create(options.PipelineModelParallelSize, options.TensorModelParallelSize);
        long rssBefore = SampleReport.PeakRssMiB();
        var layers = new LlamaLayers(grid, options.SequenceParallel, options.ZeroInit ? new Zero.ZeroInit(grid.GetDataParallelGroup()) : null);
        if (layers.TensorParallelSize > 1)
        {
            // Megatron's model_parallel_cuda_manual_seed: the default stream seeded with the seed on every rank (so the
            // full weights every layer slices are the tp = 1 model's), the model-parallel stream per tensor rank.
            DeepSpeed.Checkpointing.ModelParallelManualSeed(options.Seed, grid);
        }
        else torch.manual_seed(options.Seed);
        var model = new LlamaModel(shape, layers);
        // A whole-model file or a Hugging Face directory: each tensor rank reads its slices (under --zero-init only its
        // partitions of them); a file holding only the real vocabulary rows is padded.
        // With pipeline stages, each stage loads only its own tensors (below).
        void Load(nn.Module into, string weights)
        {
            long read = WholeModelWeights.Load(into, weights, grid, new WholeModelOptions { Vocabulary = vocabulary });
            Console.WriteLine($"llama: rank {Comm.Dist.Rank} loaded '{weights}': {read:N0} bytes read, peak RSS {rssBefore} MiB before building the model, " +
                              $"{SampleReport.PeakRssMiB()} MiB after loading");
        }
        var weightsPath = options.HfModel ?? options.InitWeights;
        if (weightsPath != null && pp == 1) Load(model, weightsPath);
        if (options.SaveDir != null && Comm.Dist.Rank == 0)
        {
            // The directory's config.json in Hugging Face's LlamaConfig form, for `dss checkpoint export --format hf`.
            Directory.CreateDirectory(options.SaveDir);
            HfLlamaConfig.Write(shape, Path.Combine(options.SaveDir, HfLlamaConfig.FileName));
        }

        // The user's own optimizer, used when the DeepSpeed config has no "optimizer" section; a factory because
        // under ZeRO it works on this rank's partition.
        Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory = config.Optimizer == null
            ? ps => optim.AdamW(ps, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01)
            : null;
        DeepSpeedEngine engine;
        SamplePipeline? pipeline = null;
        if (pp > 1)
        {
            // Pipeline parallelism: each stage takes its layers' weights from the whole model, which is then dropped.
            pipeline = LlamaPipeline.Initialize(options, shape, layers, grid, model, config, optimizerFactory,
                weightsPath == null ? null : stage => Load(stage, weightsPath));
            engine = pipeline.Engine;
            model.Dispose();
        }
        else
        {
            if (options.CheckpointActivations > 0)
            {
                DeepSpeed.Checkpointing.Configure(grid, config);
                model.CheckpointInterval = options.CheckpointActivations;
            }
            engine = DeepSpeed.Initialize(model, config: config, optimizerFactory: optimizerFactory,
                trainMicroBatchSizePerGpu: options.MicroBatch, mpu: grid, seed: options.Seed).Engine;
        }
        AddFlopsCounters(engine);

        var sampler = new BatchSampler(corpus.Tokens, shape.Seq, options.SequentialData, options.Seed);
        int rank = engine.GlobalRank, gas = engine.GradientAccumulationSteps, mb = engine.TrainMicroBatchSizePerGpu;
        long tokensPerStep = (long)engine.TrainBatchSize * shape.Seq;
        if (rank == 0)
            Console.WriteLine($"llama: {shape.ParameterCount} parameters (d {shape.DModel}, {shape.Layers} layers, {shape.Heads} heads, " +
                              $"{shape.KvHeads} kv heads, ffn {shape.FfnHiddenSize}, vocab {shape.Vocab}), data {corpus.Description}, " +
                              $"global batch {engine.TrainBatchSize} (micro {mb} × gas {gas} × dp {grid.DataParallelSize}) × seq {shape.Seq}" +
                              (pp > 1 ? $", pipeline {pp} stages × tensor {tp} × data {grid.DataParallelSize}" : ""));

        var settings = new SampleLoopSettings(options.Steps, options.LossLog, options.Resume, options.SaveDir, options.SaveEvery);
        var (stepTimes, lastLoss) = SampleTrainingLoop.Run("llama", engine, tokensPerStep, settings,
            step => pipeline?.TrainStep(step, sampler) ?? TrainStep(engine, layers, sampler, step));
        if (options.SaveWeights != null && pipeline != null) pipeline.SaveWeights(options.SaveWeights);
        else if (options.SaveWeights != null) WholeModelWeights.Save(model, options.SaveWeights, grid); // slices gathered, written once
        if (rank == 0) SampleReport.PrintSummary("llama", engine, stepTimes, options.WarmupSteps, tokensPerStep, options.CheckpointActivations);
        var fields = pipeline?.SummaryFields(options.WarmupSteps) ?? new Dictionary<string, object?>();
        fields["tensor_parallel_size"] = grid.TensorParallelSize;
        fields["pipeline_parallel_size"] = grid.PipeParallelSize;
        SampleReport.PrintMachineSummary("llama", engine, stepTimes, options.WarmupSteps, tokensPerStep, lastLoss, fields);
        return 0;
    }

    /// <summary>
    /// The model's shape and its vocabulary padding: the data's padded vocabulary, or with <c>--hf-model</c> the
    /// directory's <c>vocab_size</c>, which must hold the data's ids and split evenly over the tensor ranks (a padding
    /// row would add a class to the softmax and change the loss).
    /// </summary>
    private (LlamaConfig Shape, VocabularyPadding Vocabulary) Shape(VocabularyMap data)
    {
        if (options.HfModel is null)
            return (options.Model with { Vocab = data.PaddedSize }, new VocabularyPadding(data.Count, data.PaddedSize));
        int vocab = options.Model.Vocab, tp = options.TensorModelParallelSize;
        if (vocab < data.Count)
            throw new ArgumentException($"--hf-model: vocab_size {vocab} in '{Path.Combine(options.HfModel, HfLlamaConfig.FileName)}' is smaller than the data's {data.Count} token ids");
        if (vocab % tp != 0)
            throw new ArgumentException($"--hf-model: vocab_size {vocab} in '{Path.Combine(options.HfModel, HfLlamaConfig.FileName)}' does not split over " +
                                        $"--tensor-model-parallel-size {tp}; padding it would add classes to the softmax and change the model");
        return (options.Model, new VocabularyPadding(vocab, vocab));
    }

    /// <summary>
    /// One optimizer step without pipeline parallelism: forward, loss, backward and step for each of the
    /// gradient_accumulation_steps micro-batches of this data-parallel rank. Returns the loss averaged over the global batch.
    /// </summary>
    private static double TrainStep(DeepSpeedEngine engine, LlamaLayers layers, BatchSampler sampler, long step) =>
        SampleTrainingLoop.AccumulatedStep(engine, micro =>
        {
            var (input, target) = sampler.MicroBatch(step, engine.DataParallelRank, micro, engine.TrainMicroBatchSizePerGpu,
                engine.GradientAccumulationSteps, engine.TrainBatchSize);
            return layers.CrossEntropy(engine.Forward(input), target);
        });

    /// <summary>
    /// Tells the flops profiler (if enabled) about the work done with functional calls: the attention core
    /// (q·kᵀ and att·v over this rank's heads), the RMSNorms and the SwiGLU product.
    /// </summary>
    private static void AddFlopsCounters(DeepSpeedEngine engine)
    {
        if (engine.FlopsProfiler is not { } profiler) return;
        profiler.AddCounter<LlamaAttention>((m, _, y) =>
            Profiling.FlopsFormulas.SelfAttentionCore(y.shape[0], y.shape[1], (long)m.HeadsPerRank * m.HeadDim, m.HeadsPerRank));
        profiler.AddCounter<RmsNorm>((_, x, _) => Profiling.FlopsFormulas.LayerNorm(x.numel(), true));
        // silu and the product over the hidden activations [B, T, f].
        profiler.AddCounter<SwiGluMlp>((m, x, _) => Profiling.FlopsFormulas.Elementwise(x.numel() / x.shape[^1] * m.Hidden) * 2);
    }
}
