using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `wide-toy`: trains <see cref="WideToy"/> with the engine in one layout and writes, on global rank 0, one JSON line per
/// step {step, loss (mean over the global batch), norm (the engine's global gradient norm)} to FILE. Args:
/// <c>--pp P --tp T --sp 0|1 --stage S --offload 0|1 --hpz H --steps N --gas G --mb M --clip C --lr LR --out FILE
/// [--init-weights F] [--save-weights F] [--eval 1 [--eval-step K]]</c>. With pp &gt; 1 the layers run as a
/// <see cref="Pipeline.PipelineModule"/> under TrainBatch; otherwise as one module (mpu: the grid) under Forward /
/// Backward / Step. <c>--init-weights</c> / <c>--save-weights</c> load and save a whole-model file with
/// <see cref="WholeModelWeights"/> (pipeline layer names mapped to <see cref="WideToy.FileName"/>); <c>--eval 1</c>
/// writes a last line {eval}: the mean loss of step K's (default N) micro-batches of data-parallel rank 0, without training on them.
/// <c>--save-dir DIR --save-at K</c> saves an engine checkpoint after step K (training goes on) and
/// <c>--load-dir DIR</c> starts from DIR's latest checkpoint.
/// </summary>
public sealed class WideToyScenario : IScenario
{
    public string Name => "wide-toy";

    public int Run(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) a[args[i].TrimStart('-')] = args[i + 1];
        int I(string k, int d) => a.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        string S(string k, string d) => a.TryGetValue(k, out var v) ? v : d;
        int pp = I("pp", 1), tp = I("tp", 1), stage = I("stage", 0), steps = I("steps", 50), gas = I("gas", 2), mb = I("mb", 2), hpz = I("hpz", 1);
        bool sp = I("sp", 0) == 1, offload = I("offload", 0) == 1;
        torch.set_num_threads(1);
        Dist.Initialize();
        using var grid = PipelineParallelGrid.Create(pp, tp);
        string config = $$"""
            { "train_micro_batch_size_per_gpu": {{mb}}, "gradient_accumulation_steps": {{gas}}, "steps_per_print": 1000,
              "gradient_clipping": {{S("clip", "0")}},
              "optimizer": { "type": "AdamW", "params": { "lr": {{S("lr", "0.001")}}, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
              "zero_optimization": { "stage": {{stage}}, "reduce_bucket_size": 300000, "allgather_bucket_size": 300000,
                                     "stage3_param_persistence_threshold": 0{{(hpz > 1 ? $", \"zero_hpz_partition_size\": {hpz}" : "")}}
                                     {{(offload ? ", \"offload_optimizer\": { \"device\": \"cpu\" }" : "")}} } }
            """;
        using var log = Dist.Rank == 0 && a.TryGetValue("out", out var outFile) ? new StreamWriter(outFile) { AutoFlush = true } : null;
        var run = new RunArgs(sp, config, steps, mb, gas, S("init-weights", ""), S("save-weights", ""), I("eval", 0) == 1, I("eval-step", steps), log,
            S("save-dir", ""), I("save-at", -1), S("load-dir", ""));
        if (pp > 1) TrainPipelined(grid, run);
        else TrainModule(grid, run);
        Dist.Destroy();
        return 0;
    }

    private sealed record RunArgs(bool Sp, string Config, int Steps, int Mb, int Gas, string InitWeights, string SaveWeights, bool Eval, int EvalStep, StreamWriter? Log,
        string SaveDir = "", int SaveAt = -1, string LoadDir = "");

    private static void TrainPipelined(PipelineParallelGrid grid, RunArgs run)
    {
        using var module = new Pipeline.PipelineModule(WideToy.Layers(grid, run.Sp), grid, WideToy.Loss(grid, run.Sp), seedLayers: true, baseSeed: WideToy.BaseSeed);
        var names = new WholeModelOptions { FileName = WideToy.FileName };
        if (run.InitWeights != "") WholeModelWeights.Load(module, run.InitWeights, options: names);
        var engine = DeepSpeed.Initialize(module, config: run.Config).PipelineEngine;
        int dpRank = engine.GetDataParallelRank();
        bool reads = engine.IsFirstStage() || engine.IsLastStage();
        if (run.LoadDir != "") engine.LoadCheckpoint(run.LoadDir);
        for (long step = engine.GlobalSteps; step < run.Steps; step++)
        {
            double loss = engine.TrainBatch(reads ? WideToy.StepData(step, dpRank, run.Mb, run.Gas) : null);
            run.Log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss, norm = engine.GetGlobalGradNorm() }));
            if (step + 1 == run.SaveAt) engine.SaveCheckpoint(run.SaveDir);
        }
        if (run.SaveWeights != "") WholeModelWeights.Save(module, run.SaveWeights, options: names);
        if (run.Eval)
        {
            double eval = engine.EvalBatch(reads ? WideToy.StepData(run.EvalStep, 0, run.Mb, run.Gas) : null, bcastLoss: true).Loss!.Value;
            run.Log?.WriteLine(JsonSerializer.Serialize(new { eval }));
        }
        engine.Dispose();
    }

    private static void TrainModule(PipelineParallelGrid grid, RunArgs run)
    {
        using var model = WideToy.Model(grid, run.Sp);
        if (run.InitWeights != "") WholeModelWeights.Load(model, run.InitWeights, grid, new WholeModelOptions { FileName = WideToy.FileName });
        var lossFn = WideToy.Loss(grid, run.Sp);
        var (engine, _, _) = DeepSpeed.Initialize(model, config: run.Config, mpu: grid);
        int dpRank = engine.DataParallelRank;
        if (run.LoadDir != "") engine.LoadCheckpoint(run.LoadDir);
        for (long step = engine.GlobalSteps; step < run.Steps; step++)
        {
            double lossSum = 0;
            for (int m = 0; m < run.Gas; m++)
            {
                using var scope = NewDisposeScope();
                var (x, y) = WideToy.Batch(step, dpRank, m, run.Mb, run.Gas);
                var loss = lossFn(engine.Forward(x), y);
                lossSum += loss.item<float>();
                engine.Backward(loss);
                engine.Step();
            }
            using var mean = tensor(new[] { lossSum / run.Gas }, ScalarType.Float64);
            engine.DataParallelGroup.AllReduce(mean, ReduceOp.Avg);
            run.Log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss = mean.item<double>(), norm = engine.GetGlobalGradNorm() }));
            if (step + 1 == run.SaveAt) engine.SaveCheckpoint(run.SaveDir);
        }
        if (run.SaveWeights != "") WholeModelWeights.Save(model, run.SaveWeights, grid, new WholeModelOptions { FileName = WideToy.FileName });
        if (run.Eval)
        {
            using var noGrad = no_grad();
            double sum = 0;
            for (int m = 0; m < run.Gas; m++)
            {
                using var scope = NewDisposeScope();
                var (x, y) = WideToy.Batch(run.EvalStep, 0, m, run.Mb, run.Gas);
                sum += lossFn(model.call(x), y).item<float>();
            }
            run.Log?.WriteLine(JsonSerializer.Serialize(new { eval = sum / run.Gas }));
        }
        engine.Dispose();
    }
}
