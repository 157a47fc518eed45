using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `elastic-train`: a training job for <c>dss launch --max_restarts</c>. Trains a small MLP with the engine (ZeRO stage
/// S, AdamW, WarmupLR) to step N, saving every K steps to D; on a restart (<see cref="DeepSpeed.RestartCount"/> above 0)
/// it first loads the latest checkpoint of D. Rank 0 appends one JSON line per step to FILE: {step, loss, world,
/// restart, ms} (ms: Unix time), and {event: "resumed", step, world, restart, ms} after a load. On the first run only,
/// rank R SIGKILLs itself after step KILL (--kill-at KILL --kill-rank R), first appending {event: "kill", ms}; with
/// --kill-host it first SIGKILLs its parent, the node launcher, as if its host were lost.
/// Args: <c>--steps N --save-dir D --save-every K --out FILE [--stage S] [--kill-at KILL --kill-rank R [--kill-host]]</c>.
/// </summary>
public sealed class ElasticTrainScenario : IScenario
{
    public string Name => "elastic-train";

    public int Run(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
            if (args[i] == "--kill-host") a["kill-host"] = "1";
            else a[args[i].TrimStart('-')] = args[++i];
        int I(string k, int d) => a.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        int steps = I("steps", 10), saveEvery = I("save-every", 2), stage = I("stage", 2), killAt = I("kill-at", -1), killRank = I("kill-rank", -1);
        string saveDir = a["save-dir"], outFile = a["out"];
        int restart = DeepSpeed.RestartCount;
        torch.set_num_threads(1);
        var world = Dist.Initialize();
        manual_seed(3);
        var model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 8));
        string config = $$"""
            { "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2, "steps_per_print": 1000, "gradient_clipping": 1.0,
              "optimizer": { "type": "AdamW", "params": { "lr": 0.001, "weight_decay": 0.01 } },
              "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.002, "warmup_num_steps": 5 } },
              "zero_optimization": { "stage": {{stage}} } }
            """;
        var engine = DeepSpeed.Initialize(model, config: config).Engine;
        void Log(object line)
        {
            if (world.Rank != 0) return;
            File.AppendAllText(outFile, JsonSerializer.Serialize(line) + "\n");
        }
        long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (restart > 0 && File.Exists(Path.Combine(saveDir, "latest")))
        {
            engine.LoadCheckpoint(saveDir);
            Log(new { @event = "resumed", step = engine.GlobalSteps, world = world.Size, restart, ms = Now() });
        }
        while (engine.GlobalSteps < steps)
        {
            double sum = 0;
            for (int m = 0; m < engine.GradientAccumulationSteps; m++)
            {
                using var scope = NewDisposeScope();
                var g = new Generator((ulong)(1000 * engine.GlobalSteps + 10 * engine.DataParallelRank + m));
                var x = randn(new long[] { 2, 8 }, generator: g);
                var loss = nn.functional.mse_loss(engine.Forward(x), x.flip(1));
                sum += loss.item<float>();
                engine.Backward(loss);
                engine.Step();
            }
            Log(new { step = engine.GlobalSteps, loss = sum / engine.GradientAccumulationSteps, world = world.Size, restart, ms = Now() });
            if (engine.GlobalSteps % saveEvery == 0) engine.SaveCheckpoint(saveDir);
            if (restart == 0 && engine.GlobalSteps == killAt && world.Rank == killRank)
            {
                File.AppendAllText(outFile, JsonSerializer.Serialize(new { @event = "kill", step = killAt, ms = Now() }) + "\n");
                if (a.ContainsKey("kill-host")) Process.GetProcessById(Comm.Core.ParentDeath.ParentPid).Kill();
                Process.GetCurrentProcess().Kill();
            }
        }
        engine.Dispose();
        Dist.Destroy();
        return 0;
    }
}
