using DeepSpeedSharp.Data;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

public partial class DeepSpeedEngine
{
    /// <summary>The loader <see cref="DeepSpeed.Initialize"/> made from its <c>trainingData</c> (null without it).</summary>
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
}
