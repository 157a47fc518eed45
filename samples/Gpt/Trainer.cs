using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Weights;
using DeepSpeedSharp.Samples.Gpt.Data;
using DeepSpeedSharp.Samples.Gpt.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>
/// The sample's training loop, written the way a TorchSharp user adopts the engine: build the model, call
/// <c>DeepSpeed.Initialize</c>, then <c>engine.Forward</c> / <c>engine.Backward(loss)</c> / <c>engine.Step()</c>.
/// With <c>--pipeline-model-parallel-size</c> &gt; 1 the model is split into pipeline stages instead and each step is one
/// <c>TrainBatch</c> over the same micro-batches (<see cref="GptPipeline"/>).
/// </summary>
public sealed class Trainer
{
    /// <summary>Used when no --deepspeed_config is given: micro-batch 8, print every 10 steps.</summary>
    public const string DefaultConfig = """{ "train_micro_batch_size_per_gpu": 8, "steps_per_print": 10 }""";

    private readonly GptOptions options;

    public Trainer(GptOptions options) => this.options = options;

    public int Run()
    {
        Shared.SampleMain.StartTorch();
        torch.manual_seed(options.Seed);
        // --zero-init: build the model already partitioned (ZeRO stage 3), one submodule at a time.
        var model = new GptModel(options.Model, options.ZeroInit ? new Zero.ZeroInit() : null);
        if (options.InitWeights != null) WholeModelWeights.Load(model, options.InitWeights);
        long parameterCount = options.Model.ParameterCount;

        // The user's own optimizer, used when the DeepSpeed config has no "optimizer" section.
        string configText = options.DeepSpeedConfig ?? DefaultConfig;
        var config = Config.DeepSpeedConfig.Load(configText);
        // A factory rather than an instance, because under ZeRO the optimizer works on this rank's partition.
        Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory = config.Optimizer == null
            ? ps => optim.AdamW(ps, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01)
            : null;
        DeepSpeedEngine engine;
        Shared.SamplePipeline? pipeline = null;
        if (options.PipelineModelParallelSize > 1)
        {
            // Pipeline parallelism: each stage takes its layers' weights from the whole model, which is then dropped.
            pipeline = GptPipeline.Initialize(options, model, config, optimizerFactory);
            engine = pipeline.Engine;
            model.Dispose();
        }
        else
        {
            if (options.CheckpointActivations > 0)
            {
                DeepSpeed.Checkpointing.Configure(null, config);
                model.CheckpointInterval = options.CheckpointActivations;
            }
            engine = DeepSpeed.Initialize(model, config: config, optimizerFactory: optimizerFactory,
                trainMicroBatchSizePerGpu: options.MicroBatch, seed: options.Seed).Engine;
        }
        // The attention's q·kᵀ and att·v are functional matmuls: tell the flops profiler (if enabled) how to count them.
        engine.FlopsProfiler?.AddCounter<CausalSelfAttention>((_, x, _) => Profiling.FlopsFormulas.SelfAttentionCore(x.shape[0], x.shape[1], x.shape[2], options.Model.Heads));

        var corpus = options.Data != null
            ? TokenCorpus.FromFile(options.Data, options.Model.Vocab)
            : TokenCorpus.Synthetic(options.Model.Vocab, 1 << 20, options.Seed);
        var sampler = new BatchSampler(corpus, options.Model.Seq, options.SequentialData, options.Seed);
        int rank = engine.GlobalRank;
        long tokensPerStep = (long)engine.TrainBatchSize * options.Model.Seq;
        if (rank == 0)
            Console.WriteLine($"gpt: {parameterCount} parameters, data {corpus.Description}, " +
                              $"global batch {engine.TrainBatchSize} × seq {options.Model.Seq}" +
                              (pipeline == null ? "" : $", pipeline {options.PipelineModelParallelSize} stages × data {engine.DataParallelWorldSize}"));

        var settings = new Shared.SampleLoopSettings(options.Steps, options.LossLog, options.Resume, options.SaveDir, options.SaveEvery);
        var (stepTimes, lastLoss) = Shared.SampleTrainingLoop.Run("gpt", engine, tokensPerStep, settings,
            step => pipeline?.TrainStep(step, sampler) ?? TrainStep(engine, sampler, step));
        if (options.SaveWeights != null && pipeline != null) pipeline.SaveWeights(options.SaveWeights);
        else if (options.SaveWeights != null) WholeModelWeights.Save(model, options.SaveWeights); // rank 0 writes
        if (rank == 0) Shared.SampleReport.PrintSummary("gpt", engine, stepTimes, options.WarmupSteps, tokensPerStep, options.CheckpointActivations);
        Shared.SampleReport.PrintMachineSummary("gpt", engine, stepTimes, options.WarmupSteps, tokensPerStep, lastLoss,
            pipeline?.SummaryFields(options.WarmupSteps));
        return 0;
    }

    /// <summary>
    /// One optimizer step without pipeline parallelism: forward, backward and step for each of the gradient_accumulation_steps
    /// micro-batches of this data-parallel rank. Returns the loss averaged over the global batch.
    /// </summary>
    private double TrainStep(DeepSpeedEngine engine, BatchSampler sampler, long step) =>
        Shared.SampleTrainingLoop.AccumulatedStep(engine, micro =>
        {
            var (input, target) = sampler.MicroBatch(step, engine.DataParallelRank, micro, engine.TrainMicroBatchSizePerGpu,
                engine.GradientAccumulationSteps, engine.TrainBatchSize);
            var logits = engine.Forward(input);
            // The loss in fp32 even when the model computes in bf16/fp16 (the engine casts the model, not your loss).
            return nn.functional.cross_entropy(logits.to(ScalarType.Float32).view(-1, options.Model.Vocab), target.view(-1));
        });
}
