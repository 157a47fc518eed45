using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Native;
using DeepSpeedSharp.Samples.Llama.Data;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// The sample's training loop: tokenise the text, lay the ranks out on a <see cref="PipelineParallelGrid"/>, build
/// the model through <see cref="LlamaLayers"/>, call <c>DeepSpeed.Initialize</c> with the grid as its mpu, then
/// <c>engine.Forward</c> / <c>engine.Backward(loss)</c> / <c>engine.Step()</c> for every micro-step.
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
        TorchRuntime.EnsureLoaded();
        if (int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), out int threads) && threads > 0)
            torch.set_num_threads(threads);
        var config = Config.DeepSpeedConfig.Load(options.DeepSpeedConfig ?? DefaultConfig);
        var corpus = TextCorpus.Load(options.Data ?? TextCorpus.DefaultPath, options.FullVocab);
        var shape = options.Model with { Vocab = corpus.Vocabulary.PaddedSize };
        shape.Validate();

        Comm.Dist.Initialize();
        using var grid = PipelineParallelGrid.Create(options.PipelineModelParallelSize, options.TensorModelParallelSize);
        var layers = new LlamaLayers(grid, options.SequenceParallel);
        if (layers.TensorParallelSize > 1)
        {
            // Megatron's model_parallel_cuda_manual_seed: the default stream seeded with the seed on every rank (so the
            // full weights every layer slices are the tp = 1 model's), the model-parallel stream per tensor rank.
            DeepSpeed.Checkpointing.Configure(grid, config);
            DeepSpeed.Checkpointing.ModelParallelManualSeed(options.Seed);
        }
        else torch.manual_seed(options.Seed);
        var model = new LlamaModel(shape, layers);
        if (options.InitWeights != null) ModuleWeights.Load(model, options.InitWeights);

        // The user's own optimizer, used when the DeepSpeed config has no "optimizer" section; a factory because
        // under ZeRO it works on this rank's partition.
        Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory = config.Optimizer == null
            ? ps => optim.AdamW(ps, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01)
            : null;
        if (options.CheckpointActivations > 0)
        {
            DeepSpeed.Checkpointing.Configure(grid, config);
            model.CheckpointInterval = options.CheckpointActivations;
        }
        var (engine, _, _) = DeepSpeed.Initialize(model, config: config, optimizerFactory: optimizerFactory,
            trainMicroBatchSizePerGpu: options.MicroBatch, mpu: grid, seed: options.Seed);
        AddFlopsCounters(engine);

        var sampler = new BatchSampler(corpus.Tokens, shape.Seq, options.SequentialData, options.Seed);
        int rank = engine.GlobalRank, dpRank = grid.GetDataParallelRank(), gas = engine.GradientAccumulationSteps, mb = engine.TrainMicroBatchSizePerGpu;
        long tokensPerStep = (long)engine.TrainBatchSize * shape.Seq;
        if (rank == 0)
            Console.WriteLine($"llama: {shape.ParameterCount} parameters (d {shape.DModel}, {shape.Layers} layers, {shape.Heads} heads, " +
                              $"{shape.KvHeads} kv heads, ffn {shape.FfnHiddenSize}, vocab {shape.Vocab}), data {corpus.Description}, " +
                              $"global batch {engine.TrainBatchSize} (micro {mb} × gas {gas} × dp {grid.DataParallelSize}) × seq {shape.Seq}");

        using var lossLog = options.LossLog != null && rank == 0 ? new StreamWriter(options.LossLog) : null;
        var stepTimes = new List<double>();
        var checkpoints = new SampleCheckpoints(options, engine);
        double lastLoss = double.NaN;
        using var display = rank == 0 ? Monitoring.TrainingProgressDisplay.Start(options.Steps, tokensPerStep) : null;
        engine.Train();
        for (long step = checkpoints.Resume(); step < options.Steps; step++)
        {
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            for (int micro = 0; micro < gas; micro++)
            {
                using var scope = NewDisposeScope();
                var (input, target) = sampler.MicroBatch(step, dpRank, micro, mb, gas, engine.TrainBatchSize);
                var loss = layers.CrossEntropy(engine.Forward(input), target);
                lossSum += loss.item<float>();
                engine.Backward(loss);
                engine.Step();
            }
            double stepLoss = lastLoss = MeanOverDataParallelRanks(engine, lossSum / gas);
            stepTimes.Add(clock.Elapsed.TotalSeconds);
            double lr = engine.GetLr().FirstOrDefault();
            if (rank == 0)
            {
                display!.Update(step + 1, stepLoss, lr);
                lossLog?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss = stepLoss, lr }));
            }
            checkpoints.AfterStep(step + 1);
        }
        checkpoints.AtEnd();
        if (options.SaveWeights != null && rank == 0) ModuleWeights.Save(model, options.SaveWeights);
        display?.Dispose();
        if (rank == 0) PrintSummary(stepTimes, tokensPerStep, engine);
        PrintMachineSummary(stepTimes, tokensPerStep, engine, grid, lastLoss);
        return 0;
    }

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

    /// <summary>The loss of a step is the mean over the whole global batch: every micro-step and every data-parallel rank.</summary>
    private static double MeanOverDataParallelRanks(DeepSpeedEngine engine, double localMean)
    {
        if (engine.DataParallelWorldSize == 1) return localMean;
        using var t = torch.tensor(new[] { localMean }, ScalarType.Float64);
        engine.DataParallelGroup.AllReduce(t, Comm.ReduceOp.Avg);
        return t.item<double>();
    }

    /// <summary>Median step time after the warm-up steps (NaN without any step).</summary>
    private double MedianStepSeconds(List<double> stepTimes)
    {
        var measured = stepTimes.Skip(Math.Min(options.WarmupSteps, Math.Max(0, stepTimes.Count - 1))).Order().ToList();
        return measured.Count == 0 ? double.NaN : measured[measured.Count / 2];
    }

    private void PrintSummary(List<double> stepTimes, long tokensPerStep, DeepSpeedEngine engine)
    {
        var bytes = engine.ModelStateBytes();
        Console.WriteLine($"llama: model state bytes on rank 0: parameters {bytes.Parameters}, gradients {bytes.Gradients}, " +
                          $"optimizer state {bytes.OptimizerState}; bytes sent in the last step {engine.BytesSentLastStep}");
        if (engine.PeakGatheredParameterBytes is { } peak)
            Console.WriteLine($"llama: peak gathered parameter bytes on rank 0: {peak}");
        double median = MedianStepSeconds(stepTimes);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"llama: tokens/s {tokensPerStep / median:F0} (median step {median * 1000:F1} ms after {options.WarmupSteps} warm-up steps), peak RSS {PeakRssMiB()} MiB"));
        if (options.CheckpointActivations > 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"llama: activation checkpointing every {options.CheckpointActivations} block(s): peak saved-input bytes {DeepSpeed.Checkpointing.Stats.PeakBytes / 1048576.0:F2} MiB"));
    }

    /// <summary>One JSON line per rank for tools, with the Gpt sample's fields: `llama: summary {...}`.</summary>
    private void PrintMachineSummary(List<double> stepTimes, long tokensPerStep, DeepSpeedEngine engine, PipelineParallelGrid grid, double finalLoss)
    {
        double median = MedianStepSeconds(stepTimes);
        bool measured = !double.IsNaN(median);
        var bytes = engine.ModelStateBytes();
        Console.WriteLine("llama: summary " + JsonSerializer.Serialize(new
        {
            rank = engine.GlobalRank, world_size = engine.DataParallelWorldSize, steps = stepTimes.Count, warmup_steps = options.WarmupSteps,
            tokens_per_s = measured ? tokensPerStep / median : 0, median_step_ms = measured ? median * 1000 : 0,
            peak_rss_mib = PeakRssMiB(), parameter_bytes = bytes.Parameters, gradient_bytes = bytes.Gradients,
            optimizer_state_bytes = bytes.OptimizerState, bytes_sent_last_step = engine.BytesSentLastStep,
            final_loss = double.IsNaN(finalLoss) ? (double?)null : finalLoss,
            tensor_parallel_size = grid.TensorParallelSize, pipeline_parallel_size = grid.PipeParallelSize,
        }));
    }

    /// <summary>Peak resident set size of this process (VmHWM), in MiB.</summary>
    public static long PeakRssMiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        return -1;
    }
}
