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
/// --kill-host it first SIGKILLs its parent, the node launcher, as if its host were lost. --elastic: the batch sizes come
/// from an <c>elasticity</c> section (one global batch of 8 at 1 or 2 ranks; the log lines carry batch and micro).
/// Args: <c>--steps N --save-dir D --save-every K --out FILE [--stage S] [--elastic] [--kill-at KILL --kill-rank R [--kill-host]]</c>.
/// </summary>
public sealed class ElasticTrainScenario : IScenario
{
    public string Name => "elastic-train";

    public int Run(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
            if (args[i] is "--kill-host" or "--elastic") a[args[i][2..]] = "1";
            else a[args[i].TrimStart('-')] = args[++i];
        int I(string k, int d) => a.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        int steps = I("steps", 10), saveEvery = I("save-every", 2), stage = I("stage", 2), killAt = I("kill-at", -1), killRank = I("kill-rank", -1);
        string saveDir = a["save-dir"], outFile = a["out"];
        int restart = DeepSpeed.RestartCount;
        torch.set_num_threads(1);
        var world = Dist.Initialize();
        var engine = ToyTrainer.Build(stage, clipping: 1.0, elastic: a.ContainsKey("elastic"));
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
            double loss = ToyTrainer.Step(engine);
            Log(new { step = engine.GlobalSteps, loss, world = world.Size, restart, batch = engine.TrainBatchSize, micro = engine.TrainMicroBatchSizePerGpu, ms = Now() });
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
