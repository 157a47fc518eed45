using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// Trains <see cref="TensorParallelMlp"/> on a pipe × tensor × data grid with the engine (mpu: the grid). Args:
/// <c>--tp T --stage S --steps N --gas G --mb M --clip C --lr LR --out FILE [--save-at K --save-dir DIR] [--resume DIR]
/// [--init-weights FILE.safetensors] [--first-step K]</c> (the data of step K onwards, for a run started from exported weights).
/// Global rank 0 writes one JSON line per step to FILE: {step, loss (mean over the global batch), norm}; every rank
/// prints its parameter shapes and, after a save, the files of the tag.
/// </summary>
public sealed class TensorParallelMlpScenario : IScenario
{
    public string Name => "tp-mlp";

    public int Run(string[] args)
    {
        var a = Args(args);
        int tp = I(a, "tp", 2), stage = I(a, "stage", 0), steps = I(a, "steps", 20), gas = I(a, "gas", 2), mb = I(a, "mb", 3), saveAt = I(a, "save-at", -1);
        double clip = D(a, "clip", 0), lr = D(a, "lr", 1e-2);
        torch.set_num_threads(1);
        Dist.Initialize();
        using var grid = PipelineParallelGrid.Create(pipelineParallelSize: 1, tensorParallelSize: tp);
        var model = new TensorParallelMlp(grid.GetTensorModelParallelRank(), tp, grid.GetTensorModelParallelGroup());
        if (a.TryGetValue("init-weights", out var weights)) DeepSpeedSharp.IO.ModuleWeights.Load(model, weights);
        string config = $$"""
            { "train_micro_batch_size_per_gpu": {{mb}}, "gradient_accumulation_steps": {{gas}}, "steps_per_print": 1000,
              "gradient_clipping": {{clip.ToString(CultureInfo.InvariantCulture)}},
              "optimizer": { "type": "AdamW", "params": { "lr": {{lr.ToString(CultureInfo.InvariantCulture)}}, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
              "zero_optimization": { "stage": {{stage}}, "reduce_bucket_size": 40, "allgather_bucket_size": 60 } }
            """;
        var (engine, _, _) = DeepSpeed.Initialize(model, config: config, mpu: grid);
        Console.WriteLine($"rank {Dist.Rank}: {grid}; dp world {engine.DataParallelWorldSize}, mp world {engine.ModelParallelWorldSize}; " +
                          $"shapes {string.Join(" ", model.named_parameters().Select(p => $"{p.name}[{string.Join("x", p.parameter.shape)}]"))}");
        long first = I(a, "first-step", 0);
        if (a.TryGetValue("resume", out var resumeDir))
        {
            engine.LoadCheckpoint(resumeDir);
            first = engine.GlobalSteps;
            if (a.ContainsKey("first-step")) throw new ArgumentException("--first-step and --resume exclude each other");
        }
        using var log = Dist.Rank == 0 && a.TryGetValue("out", out var outFile) ? new StreamWriter(outFile, append: first > 0) { AutoFlush = true } : null;
        int dpRank = engine.DataParallelRank;
        for (long step = first; step < steps; step++)
        {
            double lossSum = 0;
            for (int m = 0; m < gas; m++)
            {
                using var scope = NewDisposeScope();
                var (x, y) = TensorParallelMlp.Batch(step, dpRank, m, mb, gas);
                var loss = nn.functional.mse_loss(engine.Forward(x), y);
                lossSum += loss.item<float>();
                engine.Backward(loss);
                engine.Step();
            }
            using var mean = tensor(new[] { lossSum / gas }, ScalarType.Float64);
            engine.DataParallelGroup.AllReduce(mean, ReduceOp.Avg);
            log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss = mean.item<double>(), norm = engine.GetGlobalGradNorm() }));
            if (step + 1 == saveAt)
            {
                engine.SaveCheckpoint(a["save-dir"]);
                var tagDir = Path.Combine(a["save-dir"], $"global_step{step + 1}");
                if (Dist.Rank == 0) Console.WriteLine("files: " + string.Join(" ", Directory.GetFiles(tagDir).Select(Path.GetFileName).Order()));
            }
        }
        engine.Dispose();
        Dist.Destroy();
        return 0;
    }

    private static Dictionary<string, string> Args(string[] args)
    {
        var d = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) d[args[i].TrimStart('-')] = args[i + 1];
        return d;
    }

    private static int I(Dictionary<string, string> a, string k, int dflt) => a.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : dflt;
    private static double D(Dictionary<string, string> a, string k, double dflt) => a.TryGetValue(k, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : dflt;
}
