using System.Text.Json.Nodes;
using DeepSpeedSharp.Data;
using DeepSpeedSharp.Utils;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

public partial class DeepSpeedEngine
{
    /// <summary>The checkpoint's extra-state section that holds the training loader's sampler position.</summary>
    internal const string DataSamplerSection = "data_sampler";

    /// <summary>
    /// The loader <see cref="DeepSpeed.Initialize"/> made from its <c>trainingData</c> (null without it). Its sampler's
    /// epoch and position are saved with every checkpoint and restored by <see cref="LoadCheckpoint"/>, so a resumed run
    /// continues with the batch after the last one handed out.
    /// </summary>
    public DeepSpeedDataLoader? TrainingDataLoader { get; internal set; }

    /// <summary>
    /// DeepSpeed's <c>deepspeed_io</c>: a loader over this data-parallel rank's shard of <paramref name="dataset"/>, in
    /// batches of train_micro_batch_size_per_gpu (or <paramref name="batchSize"/>), shuffled per epoch by a
    /// <see cref="DistributedSampler"/> with <paramref name="seed"/> (the same on every rank), and dropping a short last
    /// batch when the config's <c>dataloader_drop_last</c> is true.
    /// </summary>
    public DeepSpeedDataLoader DeepSpeedIO(utils.data.Dataset<IList<Tensor>> dataset, int? batchSize = null, bool shuffle = true, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var sampler = new DistributedSampler(dataset.Count, DataParallelWorldSize, DataParallelRank, shuffle, seed);
        return new DeepSpeedDataLoader(dataset, batchSize ?? TrainMicroBatchSizePerGpu, sampler, Config.DataloaderDropLast);
    }

    /// <summary>Adds the training sampler's state to a checkpoint's extra state (every rank's is the same).</summary>
    private JsonObject WithDataSamplerState(JsonObject extra)
    {
        if (TrainingDataLoader?.Sampler is { } s)
            extra[DataSamplerSection] = new JsonObject
            {
                ["epoch"] = s.Epoch, ["position"] = s.Position, ["num_replicas"] = s.NumReplicas, ["dataset_length"] = s.DatasetLength,
            };
        return extra;
    }

    /// <summary>
    /// Restores the training sampler from a checkpoint. Saved at another data-parallel world size, the position is
    /// converted through the number of samples all ranks had consumed (rounded down: a few samples may repeat).
    /// </summary>
    private void LoadDataSamplerState(JsonObject extra)
    {
        if (TrainingDataLoader?.Sampler is not { } s || extra[DataSamplerSection] is not JsonObject saved) return;
        long length = saved["dataset_length"]!.GetValue<long>();
        if (length != s.DatasetLength)
        {
            Log.Warn($"the checkpoint's data sampler was for {length} samples, the training data has {s.DatasetLength}: the data starts from epoch 0");
            return;
        }
        long consumed = saved["position"]!.GetValue<long>() * saved["num_replicas"]!.GetValue<int>();
        s.LoadState(new SamplerState(saved["epoch"]!.GetValue<long>(), Math.Min(consumed / s.NumReplicas, s.NumSamples)));
    }
}
