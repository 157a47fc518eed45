using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `checkpoint-crash`: trains a small MLP with the engine (ZeRO stage S, AdamW, WarmupLR) up to step N, saving a
/// checkpoint every K steps, and writes one JSON line {step, loss} per step to FILE (rank 0, flushed per line). Args:
/// <c>--steps N --stage S --save-dir D --save-every K [--resume D] [--crash-at STEP] [--crash-between-renames STEP] [--tag T] [--width W] --out FILE</c> (W: the
/// hidden width, default 32; T: a fixed tag, re-saved each time, instead of global_stepN). With
/// <c>--crash-between-renames</c>, rank 0 dies (exit 87) while re-saving that step's tag, between renaming the old copy
/// away and the new one into place. A save that fails prints "save failed: MESSAGE" on each rank and exits 3. With
/// <c>--crash-at</c>, the last rank dies half-way through writing its file of that step's checkpoint (the file cut to
/// half its length, exit 86): the fault is injected through the engine's <c>AfterRankFileWritten</c> option.
/// <c>--resume</c> loads the latest checkpoint of D first and prints "resumed from TAG".
/// </summary>
public sealed class CheckpointCrashScenario : IScenario
{
    public string Name => "checkpoint-crash";

    public int Run(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) a[args[i].TrimStart('-')] = args[i + 1];
        int I(string k, int d) => a.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        int steps = I("steps", 6), stage = I("stage", 1), saveEvery = I("save-every", 0), crashAt = I("crash-at", -1), width = I("width", 32);
        int crashBetween = I("crash-between-renames", -1);
        string? tag = a.TryGetValue("tag", out var t) ? t : null;
        torch.set_num_threads(1);
        var world = Dist.Initialize();
        var engine = ToyTrainer.Build(stage, width);
        if (crashAt >= 0)
            engine.AfterRankFileWritten = path =>
            {
                if (world.Rank != world.Size - 1 || engine.GlobalSteps != crashAt) return;
                using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.SetLength(f.Length / 2);
                Console.Error.WriteLine($"rank {world.Rank} exits while writing its checkpoint file of step {crashAt}");
                Console.Error.Flush();
                Environment.Exit(86);
            };
        if (crashBetween >= 0)
            engine.BetweenCommitRenames = () =>
            {
                if (engine.GlobalSteps != crashBetween) return;
                Console.Error.WriteLine($"rank {world.Rank} exits between the renames of step {crashBetween}'s save");
                Console.Error.Flush();
                Environment.Exit(87);
            };
        if (a.TryGetValue("resume", out var resume))
            Console.WriteLine($"resumed from {engine.LoadCheckpoint(resume).LoadPath}");
        using var log = world.Rank == 0 && a.TryGetValue("out", out var outFile) ? new StreamWriter(outFile, append: true) { AutoFlush = true } : null;
        while (engine.GlobalSteps < steps)
        {
            double loss = ToyTrainer.Step(engine);
            log?.WriteLine(JsonSerializer.Serialize(new { step = engine.GlobalSteps, loss }));
            if (saveEvery > 0 && engine.GlobalSteps % saveEvery == 0)
            {
                try { engine.SaveCheckpoint(a["save-dir"], tag); }
                catch (Exception e) when (e is IOException or InvalidOperationException)
                {
                    Console.Error.WriteLine($"save failed: {e.Message}");
                    return 3;
                }
            }
        }
        engine.Dispose();
        Dist.Destroy();
        return 0;
    }
}
