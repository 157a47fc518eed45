using System.Diagnostics;
using System.CommandLine;
using System.CommandLine.Help;
using System.Text.Json;
using DeepSpeedSharp;
using DeepSpeedSharp.CommandLine;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Samples.Gpt;
using DeepSpeedSharp.Samples.Gpt.Data;
using DeepSpeedSharp.Samples.Gpt.Model;
using DeepSpeedSharp.Samples.Shared;
using TorchSharp;
using static TorchSharp.torch;

// The GPT sample's training without the engine: the same model (GptModel, seeded as the sample seeds it), the same
// batches (the sample's BatchSampler over its synthetic corpus), TorchSharp's AdamW with the sample's settings, and the
// loop a TorchSharp user writes — forward, cross_entropy, zero_grad, backward, step, loss.item() — one dispose scope per
// step. Prints `plain: summary {"tokens_per_s": …, "median_step_ms": …, "final_loss": …}` (median step after --warmup).
//
// --alternate-engine: the engine's own overhead, measured in one process so that the machine's drift cancels. A second,
// identical model is trained through DeepSpeed.Initialize with the sample's default config (the same optim.AdamW, given
// as a factory), and the two loops take turns step by step on the same batches. Prints both medians, the overhead and
// the largest loss difference between the two (0: the engine computes exactly what the plain loop computes).
//
//   dotnet PlainTorchSharp.dll [--steps 100] [--warmup 10] [--micro-batch 8] [--seed 1234] [--alternate-engine]
//
// One process, OMP_NUM_THREADS threads (as the launcher gives each rank).
return SampleMain.Run("plain", () =>
{
    // The sample's defaults; bad options are one line (SampleMain.Run), as for the samples.
    var stepsOption = TrainerOptions.Int("--steps", "Training steps", 100);
    var warmupOption = TrainerOptions.Int("--warmup", "Steps left out of the medians", 10, min: 0);
    var microBatchOption = TrainerOptions.Int("--micro-batch", "Micro-batch size", 8);
    var seedOption = TrainerOptions.Int("--seed", "Model initialisation and data order", 1234, min: 0);
    var alternateOption = TrainerOptions.Flag("--alternate-engine", "Also train the model through the engine, taking turns step by step");
    var root = new RootCommand("The GPT sample's training in a plain TorchSharp loop") { stepsOption, warmupOption, microBatchOption, seedOption, alternateOption };
    var parsed = TrainerCommandLine.Parse(root, args);
    if (parsed.Action is HelpAction) return parsed.Invoke();
    return Train(parsed.GetValue(stepsOption), parsed.GetValue(warmupOption), parsed.GetValue(microBatchOption), parsed.GetValue(seedOption),
        parsed.GetValue(alternateOption));
});

static int Train(int steps, int warmup, int microBatch, int seed, bool alternate)
{
    SampleMain.StartTorch(); // libtorch with the launcher's OMP_NUM_THREADS, as the samples start it
    var config = new GptConfig();
    var corpus = TokenCorpus.Synthetic(config.Vocab, 1 << 20, seed);
    var sampler = new BatchSampler(corpus, config.Seq, sequential: false, seed);
    Tensor Loss(Tensor logits, Tensor target) => nn.functional.cross_entropy(logits.view(-1, config.Vocab), target.view(-1));

    torch.manual_seed(seed);
    using var model = new GptModel(config);
    // The sample's optimizer when its config names none (Trainer's factory).
    static optim.Optimizer AdamW(IEnumerable<TorchSharp.Modules.Parameter> ps) => optim.AdamW(ps, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01);
    using var optimizer = AdamW(model.parameters());
    model.train();
    double PlainStep(int step)
    {
        using var scope = NewDisposeScope();
        var (input, target) = sampler.MicroBatch(step, 0, 0, microBatch, 1, microBatch);
        var loss = Loss(model.call(input), target);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        return loss.item<float>();
    }

    DeepSpeedEngine? engine = null;
    if (alternate)
    {
        torch.manual_seed(seed);
        var engineModel = new GptModel(config);
        engine = DeepSpeed.Initialize(engineModel, config: Trainer.DefaultConfig, trainMicroBatchSizePerGpu: microBatch, seed: seed,
            optimizerFactory: AdamW).Engine;
        engine.Train();
    }
    double EngineStep(int step)
    {
        using var scope = NewDisposeScope();
        var (input, target) = sampler.MicroBatch(step, 0, 0, microBatch, 1, microBatch);
        var loss = Loss(engine!.Forward(input), target);
        engine.Backward(loss);
        engine.Step();
        return loss.item<float>();
    }

    var plainTimes = new List<double>();
    var engineTimes = new List<double>();
    double plainLoss = double.NaN, maxDifference = 0;
    for (int step = 0; step < steps; step++)
    {
        // Alternate which loop goes first, so that neither always runs right after the other.
        bool engineFirst = step % 2 == 1;
        double engineLoss = double.NaN;
        if (engine != null && engineFirst) engineLoss = Timed(engineTimes, () => EngineStep(step));
        plainLoss = Timed(plainTimes, () => PlainStep(step));
        if (engine != null && !engineFirst) engineLoss = Timed(engineTimes, () => EngineStep(step));
        if (engine != null) maxDifference = Math.Max(maxDifference, Math.Abs(engineLoss - plainLoss));
    }
    static double Timed(List<double> times, Func<double> step)
    {
        var clock = Stopwatch.StartNew();
        double loss = step();
        times.Add(clock.Elapsed.TotalSeconds);
        return loss;
    }
    double Median(List<double> times) => SampleReport.MedianStepSeconds(times, warmup);

    double plainMedian = Median(plainTimes);
    var summary = new Dictionary<string, object>
    {
        ["tokens_per_s"] = microBatch * config.Seq / plainMedian, ["median_step_ms"] = plainMedian * 1000, ["final_loss"] = plainLoss,
    };
    if (engine != null)
    {
        double engineMedian = Median(engineTimes);
        summary["engine_median_step_ms"] = engineMedian * 1000;
        summary["engine_overhead"] = engineMedian / plainMedian - 1;
        summary["max_loss_difference"] = maxDifference;
        // The median of the step-by-step differences: the overhead with each pair of steps taken at the same moment.
        var pairs = engineTimes.Zip(plainTimes).Skip(warmup).Select(p => p.First - p.Second).Order().ToList();
        summary["median_paired_difference_ms"] = pairs[pairs.Count / 2] * 1000;
        engine.Dispose();
    }
    Console.WriteLine("plain: summary " + JsonSerializer.Serialize(summary));
    return 0;
}
