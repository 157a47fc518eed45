using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Samples.Bert.Data;
using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Samples.Shared.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert;

/// <summary>
/// The sample's training loop, the Intel Gaudi DeepSpeed guide's BERT steps: tokenise the text, build
/// <see cref="BertForMaskedLM"/> after <c>torch.manual_seed(seed)</c>, configure activation checkpointing
/// (<c>DeepSpeed.Checkpointing.Configure</c>) when <c>--checkpoint-activations</c> is given, call
/// <c>DeepSpeed.Initialize</c> with the JSON config, then <c>engine.Forward</c> / <c>engine.Backward(loss)</c> /
/// <c>engine.Step()</c> for every micro-step; <c>engine.SaveCheckpoint</c> / <c>LoadCheckpoint</c> through
/// <see cref="SampleCheckpoints"/>.
/// </summary>
public sealed class Trainer
{
    /// <summary>Used when no --deepspeed_config is given: micro-batch 8, print every 10 steps.</summary>
    public const string DefaultConfig = """{ "train_micro_batch_size_per_gpu": 8, "steps_per_print": 10 }""";

    private readonly BertOptions options;

    /// <param name="options">The parsed command line.</param>
    public Trainer(BertOptions options) => this.options = options;

    /// <summary>Trains <c>--steps</c> steps and prints the summary; returns the exit code.</summary>
    public int Run()
    {
        Shared.SampleMain.StartTorch();
        var config = Config.DeepSpeedConfig.Load(options.DeepSpeedConfig ?? DefaultConfig);
        var corpus = TextCorpus.Load(options.Data ?? TextCorpus.DefaultPath, fullVocab: false);
        var vocabulary = new BertVocabulary(corpus.Vocabulary);
        var shape = options.Model with { Vocab = vocabulary.PaddedSize };
        shape.Validate();

        torch.manual_seed(options.Seed);
        var model = new BertForMaskedLM(shape);
        if (options.CheckpointInterval > 0)
        {
            // The guide's deepspeed.checkpointing.configure(mpu_, deepspeed_config=...), then checkpointed_forward.
            DeepSpeed.Checkpointing.Configure(null, config);
            model.CheckpointInterval = options.CheckpointInterval;
        }
        // The user's own optimizer, used when the DeepSpeed config has no "optimizer" section; a factory because
        // under ZeRO it works on this rank's partition.
        Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory = config.Optimizer == null
            ? ps => optim.AdamW(ps, lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-6, weight_decay: 0.01)
            : null;
        var engine = DeepSpeed.Initialize(model, config: config, optimizerFactory: optimizerFactory,
            trainMicroBatchSizePerGpu: options.MicroBatch, seed: options.Seed).Engine;

        var batches = new MaskedLmBatches(corpus.Tokens, vocabulary, shape.Seq, options.SequentialData, options.Seed);
        int rank = engine.GlobalRank, gas = engine.GradientAccumulationSteps, mb = engine.TrainMicroBatchSizePerGpu;
        long tokensPerStep = (long)engine.TrainBatchSize * shape.Seq;
        if (rank == 0)
            Console.WriteLine($"bert: {shape.ParameterCount} parameters (d {shape.DModel}, {shape.Layers} layers, {shape.Heads} heads, " +
                              $"ffn {shape.FfnHiddenSize}, vocab {shape.Vocab}: {vocabulary}), data {corpus.Description}, " +
                              $"global batch {engine.TrainBatchSize} (micro {mb} × gas {gas} × dp {engine.DataParallelWorldSize}) × seq {shape.Seq}, " +
                              $"masked LM {BertMasking.ChooseProbability * 100:F0}% of positions (80/10/10)" +
                              (options.CheckpointInterval > 0 ? $", activation checkpointing every {options.CheckpointInterval} layer(s)" : ""));

        var settings = new SampleLoopSettings(options.Steps, options.LossLog, options.Resume, options.SaveDir, options.SaveEvery);
        var (stepTimes, lastLoss) = SampleTrainingLoop.Run("bert", engine, tokensPerStep, settings, step => TrainStep(engine, batches, step));
        if (rank == 0) SampleReport.PrintSummary("bert", engine, stepTimes, options.WarmupSteps, tokensPerStep, options.CheckpointInterval);
        SampleReport.PrintMachineSummary("bert", engine, stepTimes, options.WarmupSteps, tokensPerStep, lastLoss);
        return 0;
    }

    /// <summary>
    /// One optimizer step: forward, masked-LM loss, backward and step for each of the gradient_accumulation_steps
    /// micro-batches of this data-parallel rank. Returns the loss averaged over the global batch (the mean of the
    /// micro-batches' masked-LM losses).
    /// </summary>
    private static double TrainStep(DeepSpeedEngine engine, MaskedLmBatches batches, long step) =>
        SampleTrainingLoop.AccumulatedStep(engine, micro =>
        {
            var (input, labels) = batches.MicroBatch(step, engine.DataParallelRank, micro, engine.TrainMicroBatchSizePerGpu,
                engine.GradientAccumulationSteps, engine.TrainBatchSize);
            return BertForMaskedLM.MaskedLmLoss(engine.Forward(input), labels);
        });
}
