using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// Trains <see cref="PipelineToy"/> as a <see cref="PipelineModule"/> on a pipe × tensor × data grid with
/// <see cref="PipelineEngine.TrainBatch"/>, then evaluates one batch with <c>bcastLoss</c> true and false. Args:
/// <c>--pp P --tp T --stage S --steps N --gas G --mb M --blocks B --tied 0|1 --clip C --lr LR --interval K
/// --csv DIR --virtual V --config-interval K (pipeline.activation_checkpoint_interval) --run-ahead K (pipeline.run_ahead_micro_batches) --partition METHOD --bf16 0|1 --pipe-partitioned 0|1 --out FILE [--save-at K --save-dir DIR] [--resume DIR]</c>. Global rank 0 writes one JSON line per step
/// {step, loss, norm} to FILE; every rank writes FILE.evalR: {rank, stage, bcast, noBcast, bcastBytes, noBcastBytes}
/// and prints what Forward() says on a pipeline engine.
/// </summary>
public sealed class PipelineToyScenario : IScenario
{
    public string Name => "pipe-toy";

    /// <summary>With --csv DIR: a csv monitor in DIR/pipe and a linear WarmupLR over 4 steps (0.001 → 0.01).</summary>
    private static string Monitoring(Dictionary<string, string> a) => !a.TryGetValue("csv", out var dir) ? "" : $$"""
        ,
          "csv_monitor": { "enabled": true, "output_path": "{{dir}}", "job_name": "pipe" },
          "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0.001, "warmup_max_lr": 0.01, "warmup_num_steps": 4, "warmup_type": "linear" } }
        """;

    public int Run(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) a[args[i].TrimStart('-')] = args[i + 1];
        int I(string k, int d) => a.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        string S(string k, string d) => a.TryGetValue(k, out var v) ? v : d;
        int pp = I("pp", 2), tp = I("tp", 1), stage = I("stage", 0), steps = I("steps", 10), gas = I("gas", 4), mb = I("mb", 2), blocks = I("blocks", 3);
        bool tied = I("tied", 1) == 1, bf16 = I("bf16", 0) == 1;
        torch.set_num_threads(1);
        Dist.Initialize();
        using var grid = PipelineParallelGrid.Create(pp, tp);
        using var module = new PipelineModule(PipelineToy.Layers(blocks, tied, grid), grid, PipelineToy.Loss,
            partitionMethod: S("partition", "parameters"), activationCheckpointInterval: I("interval", 0), seedLayers: true, baseSeed: PipelineToy.BaseSeed,
            virtualStages: I("virtual", 1));
        string config = $$"""
            { "train_micro_batch_size_per_gpu": {{mb}}, "gradient_accumulation_steps": {{gas}}, "steps_per_print": 1000,
              "gradient_clipping": {{S("clip", "0")}},
              "bf16": { "enabled": {{(bf16 ? "true" : "false")}} },
              "pipeline": { "pipe_partitioned": {{(I("pipe-partitioned", 1) == 1 ? "true" : "false")}}, "grad_partitioned": {{(I("pipe-partitioned", 1) == 1 ? "true" : "false")}},
                            "activation_checkpoint_interval": {{I("config-interval", 0)}}, "run_ahead_micro_batches": {{I("run-ahead", 0)}} },
              "optimizer": { "type": "AdamW", "params": { "lr": {{S("lr", "0.01")}}, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
              "zero_optimization": { "stage": {{stage}}, "reduce_bucket_size": 50, "allgather_bucket_size": 70, "overlap_comm": true }{{Monitoring(a)}} }
            """;
        var init = DeepSpeed.Initialize(module, config: config);
        var engine = init.PipelineEngine;
        Console.WriteLine($"rank {Dist.Rank}: {grid}; layers [{module.LocalStart}, {module.LocalStop}); checkpoint interval {module.ActivationCheckpointInterval}; " +
                          $"parameters {string.Join(" ", module.named_parameters().Select(p => p.name))}");
        var passes = engine.TrainScheduleForThisStage().Steps().SelectMany(step => step).Where(i => i is ForwardPass or BackwardPass).ToList();
        Console.WriteLine($"rank {Dist.Rank}: stage {engine.StageId} runs {passes.FindIndex(i => i is BackwardPass)} forward passes before its first backward");
        try { engine.Forward(zeros(1)); }
        catch (InvalidOperationException e) { Console.WriteLine($"forward-refused: {e.Message}"); }

        long first = 0;
        if (a.TryGetValue("resume", out var resumeDir))
        {
            engine.LoadCheckpoint(resumeDir);
            first = engine.GlobalSteps;
        }
        using var log = Dist.Rank == 0 && a.TryGetValue("out", out var outFile) ? new StreamWriter(outFile) { AutoFlush = true } : null;
        int dpRank = engine.GetDataParallelRank();
        bool reads = engine.IsFirstStage() || engine.IsLastStage();
        for (long step = first; step < steps; step++)
        {
            double loss = engine.TrainBatch(reads ? PipelineToy.StepData(step, dpRank, mb, gas) : null);
            log?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss, norm = engine.GetGlobalGradNorm() }));
            if (step + 1 == I("save-at", -1)) engine.SaveCheckpoint(a["save-dir"]);
        }

        long before = Dist.Logger.BytesSent;
        var withBroadcast = engine.EvalBatch(reads ? PipelineToy.StepData(steps, dpRank, mb, gas) : null, bcastLoss: true);
        long bcastBytes = Dist.Logger.BytesSent - before;
        before = Dist.Logger.BytesSent;
        var withoutBroadcast = engine.EvalBatch(reads ? PipelineToy.StepData(steps, dpRank, mb, gas) : null, bcastLoss: false);
        long noBcastBytes = Dist.Logger.BytesSent - before;
        if (a.TryGetValue("out", out var outPath))
            File.WriteAllText($"{outPath}.eval{Dist.Rank}", JsonSerializer.Serialize(new
            {
                rank = Dist.Rank, stage = engine.StageId, bcast = withBroadcast.Loss, noBcast = withoutBroadcast.Loss, bcastBytes, noBcastBytes,
            }));
        engine.Dispose();
        Dist.Destroy();
        return 0;
    }
}
