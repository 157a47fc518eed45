using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `clip-norm`: trains <see cref="WideToy"/> with the engine in one layout and writes, on global rank 0, one JSON line per
/// step {step, loss (mean over the global batch), norm (the engine's global gradient norm)} to FILE. Args:
/// <c>--pp P --tp T --sp 0|1 --stage S --offload 0|1 --hpz H --steps N --gas G --mb M --clip C --lr LR --out FILE</c>.
/// With pp &gt; 1 the layers run as a <see cref="Pipeline.PipelineModule"/> under TrainBatch; otherwise as one module
/// (mpu: the grid) under Forward / Backward / Step.
/// </summary>
public sealed class ClipNormScenario : IScenario
{
    public string Name => "clip-norm";

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
        if (pp > 1) TrainPipelined(grid, sp, config, steps, mb, gas, log);
        else TrainModule(grid, sp, config, steps, mb, gas, log);
        Dist.Destroy();
        return 0;
    }

    private static void TrainPipelined(PipelineParallelGrid grid, bool sp, string config, int steps, int mb, int gas, StreamWriter? log)
    {
        using var module = new Pipeline.PipelineModule(WideToy.Layers(grid, sp), grid, WideToy.Loss(grid, sp), seedLayers: true, baseSeed: WideToy.BaseSeed);
        var engine = DeepSpeed.Initialize(module, config: config).PipelineEngine;
        int dpRank = engine.GetDataParallelRank();
        bool reads = engine.IsFirstStage() || engine.IsLastStage();
        for (long step = 0; step < steps; step++)
        {
            double loss = engine.TrainBatch(reads ? WideToy.StepData(step, dpRank, mb, gas) : null);
            log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss, norm = engine.GetGlobalGradNorm() }));
        }
        engine.Dispose();
    }

    private static void TrainModule(PipelineParallelGrid grid, bool sp, string config, int steps, int mb, int gas, StreamWriter? log)
    {
        using var model = WideToy.Model(grid, sp);
        var lossFn = WideToy.Loss(grid, sp);
        var (engine, _, _) = DeepSpeed.Initialize(model, config: config, mpu: grid);
        int dpRank = engine.DataParallelRank;
        for (long step = 0; step < steps; step++)
        {
            double lossSum = 0;
            for (int m = 0; m < gas; m++)
            {
                using var scope = NewDisposeScope();
                var (x, y) = WideToy.Batch(step, dpRank, m, mb, gas);
                var loss = lossFn(engine.Forward(x), y);
                lossSum += loss.item<float>();
                engine.Backward(loss);
                engine.Step();
            }
            using var mean = tensor(new[] { lossSum / gas }, ScalarType.Float64);
            engine.DataParallelGroup.AllReduce(mean, ReduceOp.Avg);
            log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss = mean.item<double>(), norm = engine.GetGlobalGradNorm() }));
        }
        engine.Dispose();
    }
}
