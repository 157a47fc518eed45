using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Optim.CpuAdam;
using DeepSpeedSharp.Schedulers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `client-optimizer`: the DeepSpeed guide's order — build the optimizer over the model's parameters (two param groups:
/// weights with weight decay, biases and LayerNorm without, at different learning rates), build a WarmupCosineLR over it, then
/// <c>DeepSpeed.Initialize(model, optimizer: …, lrScheduler: …)</c> with a config that has no optimizer section — and
/// trains <see cref="WideToy"/> with gradient clipping. Rank 0 writes one JSON line {step, loss, norm, lr} per step to FILE.
/// Args: <c>--stage S --offload 0|1 --optimizer adamw|sgd|cpuadam --steps N --out FILE [--save-dir DIR --save-at K]
/// [--load-dir DIR]</c>: save a checkpoint after step K (training goes on), or start from DIR's latest checkpoint.
/// </summary>
public sealed class ClientOptimizerScenario : IScenario
{
    public const int Gas = 2, Mb = 2;
    public const double Clip = 1.0;

    public string Name => "client-optimizer";

    /// <summary>The user's optimizer over <paramref name="model"/>'s parameters: decay / no-decay groups, as BERT and GPT recipes build them.</summary>
    public static optim.Optimizer Build(nn.Module model, string kind)
    {
        var named = model.named_parameters().ToList();
        var decay = named.Where(p => p.parameter.dim() >= 2).Select(p => p.parameter).ToList();
        var noDecay = named.Where(p => p.parameter.dim() < 2).Select(p => p.parameter).ToList();
        return kind switch
        {
            "adamw" => optim.AdamW(new[]
            {
                new AdamW.ParamGroup(decay, new AdamW.Options { LearningRate = 2e-3, weight_decay = 0.1 }),
                new AdamW.ParamGroup(noDecay, new AdamW.Options { LearningRate = 1e-3, weight_decay = 0.0 }),
            }, beta1: 0.9, beta2: 0.95, eps: 1e-8),
            "sgd" => optim.SGD(new[]
            {
                new SGD.ParamGroup(decay, new SGD.Options { LearningRate = 0.05, weight_decay = 1e-3, momentum = 0.9 }),
                new SGD.ParamGroup(noDecay, new SGD.Options { LearningRate = 0.02, weight_decay = 0.0, momentum = 0.9 }),
            }, learningRate: 0.05),
            "cpuadam" => new DeepSpeedCpuAdam(new[]
            {
                new Optim.AdamOptimizerBase.ParamGroup(decay, new Optim.AdamOptimizerBase.Options { LearningRate = 2e-3, weight_decay = 0.1 }),
                new Optim.AdamOptimizerBase.ParamGroup(noDecay, new Optim.AdamOptimizerBase.Options { LearningRate = 1e-3, weight_decay = 0.0 }),
            }, beta1: 0.9, beta2: 0.95, eps: 1e-8, threads: 1),
            _ => throw new ArgumentException($"--optimizer {kind}: adamw, sgd or cpuadam"),
        };
    }

    /// <summary>The schedule both runs use: WarmupCosineLR, which scales each group's own learning rate (warm-up over 5
    /// steps from a tenth of it, cosine decay over 40).</summary>
    public static LrScheduler Schedule(optim.Optimizer optimizer) => new WarmupCosineLR(optimizer, totalNumSteps: 40, warmupMinRatio: 0.1,
        warmupNumSteps: 5, warmupType: "linear");

    public int Run(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) a[args[i].TrimStart('-')] = args[i + 1];
        int stage = int.Parse(a["stage"], CultureInfo.InvariantCulture), steps = int.Parse(a["steps"], CultureInfo.InvariantCulture);
        bool offload = a.GetValueOrDefault("offload") == "1";
        string kind = a["optimizer"];
        torch.set_num_threads(1);
        Dist.Initialize();
        string config = $$"""
            { "train_micro_batch_size_per_gpu": {{Mb}}, "gradient_accumulation_steps": {{Gas}}, "steps_per_print": 1000,
              "gradient_clipping": {{Clip}}, "zero_allow_untested_optimizer": true, "zero_force_ds_cpu_optimizer": false,
              "zero_optimization": { "stage": {{stage}}, "reduce_bucket_size": 300000, "allgather_bucket_size": 300000,
                                     "stage3_param_persistence_threshold": 0
                                     {{(offload ? ", \"offload_optimizer\": { \"device\": \"cpu\" }" : "")}} } }
            """;
        using var model = WideToy.Model(null, false);
        var client = Build(model, kind);
        var schedule = Schedule(client);
        var (engine, optimizer, _, _) = DeepSpeed.Initialize(model, optimizer: client, lrScheduler: schedule, config: config);
        if (optimizer!.GetType() != client.GetType() || optimizer.ParamGroups.Count() != 2)
            throw new InvalidOperationException($"the engine steps {optimizer.GetType().Name} with {optimizer.ParamGroups.Count()} groups");
        var loss = WideToy.Loss(null, false);
        using var log = Dist.Rank == 0 ? new StreamWriter(a["out"]) { AutoFlush = true } : null;
        if (a.TryGetValue("load-dir", out var loadDir)) engine.LoadCheckpoint(loadDir);
        int saveAt = a.TryGetValue("save-at", out var k) ? int.Parse(k, CultureInfo.InvariantCulture) : -1;
        for (long step = engine.GlobalSteps; step < steps; step++)
        {
            double sum = 0;
            for (int m = 0; m < Gas; m++)
            {
                using var scope = NewDisposeScope();
                var (x, y) = WideToy.Batch(step, engine.DataParallelRank, m, Mb, Gas);
                var l = loss(engine.Forward(x), y);
                sum += l.item<float>();
                engine.Backward(l);
                engine.Step();
            }
            using var mean = tensor(new[] { sum / Gas }, ScalarType.Float64);
            engine.DataParallelGroup.AllReduce(mean, ReduceOp.Avg);
            log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss = mean.item<double>(), norm = engine.GetGlobalGradNorm(), lr = engine.GetLr() }));
            if (step + 1 == saveAt) engine.SaveCheckpoint(a["save-dir"]);
        }
        engine.Dispose();
        Dist.Destroy();
        return 0;
    }

    /// <summary>The unsplit model trained by the plain loop with the same optimizer and schedule over the model's own parameters.</summary>
    public static List<(double Loss, double Norm)> PlainReference(string kind, int steps, int dp)
    {
        using var scope = NewDisposeScope();
        using var model = WideToy.Model(null, false);
        var opt = Build(model, kind);
        var schedule = Schedule(opt);
        var loss = WideToy.Loss(null, false);
        return PlainLoop.Train(model.parameters().ToList(), (step, d, m) =>
        {
            var (x, y) = WideToy.Batch(step, d, m, Mb, Gas);
            return loss(model.call(x), y);
        }, steps, dp, Gas, Clip, 0, optimizer: opt, afterStep: () => schedule.Step());
    }
}
