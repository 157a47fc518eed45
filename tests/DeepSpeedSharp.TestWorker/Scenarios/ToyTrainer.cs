using DeepSpeedSharp.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// The small training job the checkpoint fault scenarios share: an 8→W→8 MLP under the engine (ZeRO stage S, AdamW,
/// WarmupLR, 2 micro-batches of 2 per step), fed from generators seeded by the step, the data-parallel rank and the
/// micro-batch, so a resumed run sees exactly the batches an uninterrupted one would.
/// </summary>
public static class ToyTrainer
{
    /// <summary>
    /// Builds the engine (the model seeded with 3); <paramref name="clipping"/> adds <c>gradient_clipping</c>;
    /// <paramref name="elastic"/> replaces the batch keys by an <c>elasticity</c> section (a global batch of 8, micro
    /// batches of 2 or 4, for 1 or 2 data-parallel ranks).
    /// </summary>
    public static DeepSpeedEngine Build(int stage, int width = 32, double? clipping = null, bool elastic = false)
    {
        manual_seed(3);
        var model = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 8));
        string clip = clipping is { } c ? $"\"gradient_clipping\": {c.ToString(System.Globalization.CultureInfo.InvariantCulture)}," : "";
        string batch = elastic
            ? "\"elasticity\": { \"enabled\": true, \"max_train_batch_size\": 8, \"micro_batch_sizes\": [2, 4], \"min_gpus\": 1, \"max_gpus\": 2, \"version\": 0.1 },"
            : "\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 2,";
        string config = $$"""
            { {{batch}} "steps_per_print": 1000, {{clip}}
              "optimizer": { "type": "AdamW", "params": { "lr": 0.001, "weight_decay": 0.01 } },
              "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.002, "warmup_num_steps": 5 } },
              "zero_optimization": { "stage": {{stage}} } }
            """;
        return DeepSpeed.Initialize(model, config: config).Engine;
    }

    /// <summary>Trains one step (its micro-batches); returns this rank's mean micro-batch loss.</summary>
    public static double Step(DeepSpeedEngine engine)
    {
        double sum = 0;
        for (int m = 0; m < engine.GradientAccumulationSteps; m++)
        {
            using var scope = NewDisposeScope();
            var g = new Generator((ulong)(1000 * engine.GlobalSteps + 10 * engine.DataParallelRank + m));
            var x = randn(new long[] { engine.TrainMicroBatchSizePerGpu, 8 }, generator: g);
            var loss = nn.functional.mse_loss(engine.Forward(x), x.flip(1));
            sum += loss.item<float>();
            engine.Backward(loss);
            engine.Step();
        }
        return sum / engine.GradientAccumulationSteps;
    }
}
