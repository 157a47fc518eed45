using DeepSpeedSharp.Training;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Native;
using DeepSpeedSharp.Samples.Gpt.Data;
using DeepSpeedSharp.Samples.Gpt.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>
/// The sample's training loop, written the way a TorchSharp user adopts the engine: build the model, call
/// <c>DeepSpeed.Initialize</c>, then <c>engine.Forward</c> / <c>engine.Backward(loss)</c> / <c>engine.Step()</c>.
/// </summary>
public sealed class Trainer
{
    /// <summary>Used when no --deepspeed_config is given: micro-batch 8, print every 10 steps.</summary>
    public const string DefaultConfig = """{ "train_micro_batch_size_per_gpu": 8, "steps_per_print": 10 }""";

    private readonly GptOptions options;

    public Trainer(GptOptions options) => this.options = options;

    public int Run()
    {
        TorchRuntime.EnsureLoaded();
        if (int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), out int threads) && threads > 0)
            torch.set_num_threads(threads);
        torch.manual_seed(options.Seed);
        // --zero-init: build the model already partitioned (ZeRO stage 3), one submodule at a time.
        var model = new GptModel(options.Model, options.ZeroInit ? new Zero.ZeroInit() : null);
        if (options.InitWeights != null) ModuleWeights.Load(model, options.InitWeights);
        long parameterCount = options.Model.ParameterCount;

        // The user's own optimizer, used when the DeepSpeed config has no "optimizer" section.
        string configText = options.DeepSpeedConfig ?? DefaultConfig;
        var config = Config.DeepSpeedConfig.Load(configText);
        // A factory rather than an instance, because under ZeRO the optimizer works on this rank's partition.
        Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer>? optimizerFactory = config.Optimizer == null
            ? ps => optim.AdamW(ps, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01)
            : null;
        if (options.CheckpointActivations > 0)
        {
            DeepSpeed.Checkpointing.Configure(null, config);
            model.CheckpointInterval = options.CheckpointActivations;
        }
        var (engine, _, _) = DeepSpeed.Initialize(model, config: config, optimizerFactory: optimizerFactory,
            trainMicroBatchSizePerGpu: options.MicroBatch, seed: options.Seed);
        // The attention's q·kᵀ and att·v are functional matmuls: tell the flops profiler (if enabled) how to count them.
        engine.FlopsProfiler?.AddCounter<CausalSelfAttention>((_, x, _) => Profiling.FlopsFormulas.SelfAttentionCore(x.shape[0], x.shape[1], x.shape[2], options.Model.Heads));

        var corpus = options.Data != null
            ? TokenCorpus.FromFile(options.Data, options.Model.Vocab)
            : TokenCorpus.Synthetic(options.Model.Vocab, 1 << 20, options.Seed);
        var sampler = new BatchSampler(corpus, options.Model.Seq, options.SequentialData, options.Seed);
        int rank = engine.GlobalRank, dpRank = engine.DataParallelRank, gas = engine.GradientAccumulationSteps, mb = engine.TrainMicroBatchSizePerGpu;
        long tokensPerStep = (long)engine.TrainBatchSize * options.Model.Seq;
        if (rank == 0)
            Console.WriteLine($"gpt: {parameterCount} parameters, data {corpus.Description}, " +
                              $"global batch {engine.TrainBatchSize} × seq {options.Model.Seq}");

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
                var logits = engine.Forward(input);
                // The loss in fp32 even when the model computes in bf16/fp16 (the engine casts the model, not your loss).
                var loss = nn.functional.cross_entropy(logits.to(ScalarType.Float32).view(-1, options.Model.Vocab), target.view(-1));
                lossSum += loss.item<float>();
                engine.Backward(loss);
                engine.Step();
            }
            double stepLoss = lastLoss = MeanOverRanks(engine, lossSum / gas);
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
        PrintMachineSummary(stepTimes, tokensPerStep, engine, lastLoss);
        return 0;
    }

    /// <summary>The loss of a step is the mean over the whole global batch: every micro-step and every rank.</summary>
    private static double MeanOverRanks(Engine.DeepSpeedEngine engine, double localMean)
    {
        if (engine.DataParallelWorldSize == 1) return localMean;
        using var t = torch.tensor(new[] { localMean }, ScalarType.Float64);
        engine.DataParallelGroup.AllReduce(t, Comm.ReduceOp.Avg);
        return t.item<double>();
    }

    private void PrintSummary(List<double> stepTimes, long tokensPerStep, Engine.DeepSpeedEngine engine)
    {
        var bytes = engine.ModelStateBytes();
        Console.WriteLine($"gpt: model state bytes on rank 0: parameters {bytes.Parameters}, gradients {bytes.Gradients}, " +
                          $"optimizer state {bytes.OptimizerState}; bytes sent in the last step {engine.BytesSentLastStep}");
        if (engine.PeakGatheredParameterBytes is { } peak)
            Console.WriteLine($"gpt: peak gathered parameter bytes on rank 0: {peak}");
        var measured = stepTimes.Skip(Math.Min(options.WarmupSteps, Math.Max(0, stepTimes.Count - 1))).Order().ToList();
        double median = measured.Count == 0 ? double.NaN : measured[measured.Count / 2];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"gpt: tokens/s {tokensPerStep / median:F0} (median step {median * 1000:F1} ms after {options.WarmupSteps} warm-up steps), peak RSS {PeakRssMiB()} MiB"));
        if (options.CheckpointActivations > 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gpt: activation checkpointing every {options.CheckpointActivations} block(s): peak saved-input bytes {DeepSpeed.Checkpointing.Stats.PeakBytes / 1048576.0:F2} MiB"));
    }

    /// <summary>One JSON line per rank for tools (`dss bench train` reads it): `gpt: summary {...}`.</summary>
    private void PrintMachineSummary(List<double> stepTimes, long tokensPerStep, Engine.DeepSpeedEngine engine, double finalLoss)
    {
        var measured = stepTimes.Skip(Math.Min(options.WarmupSteps, Math.Max(0, stepTimes.Count - 1))).Order().ToList();
        double median = measured.Count == 0 ? double.NaN : measured[measured.Count / 2];
        var bytes = engine.ModelStateBytes();
        Console.WriteLine("gpt: summary " + JsonSerializer.Serialize(new
        {
            rank = engine.GlobalRank, world_size = engine.DataParallelWorldSize, steps = stepTimes.Count, warmup_steps = options.WarmupSteps,
            tokens_per_s = measured.Count == 0 ? 0 : tokensPerStep / median, median_step_ms = measured.Count == 0 ? 0 : median * 1000,
            peak_rss_mib = PeakRssMiB(), parameter_bytes = bytes.Parameters, gradient_bytes = bytes.Gradients,
            optimizer_state_bytes = bytes.OptimizerState, bytes_sent_last_step = engine.BytesSentLastStep,
            final_loss = double.IsNaN(finalLoss) ? (double?)null : finalLoss,
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
