using System.Collections;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Data;

/// <summary>
/// DeepSpeed's <c>DeepSpeedDataLoader</c> (what <c>deepspeed.initialize(training_data=...)</c> and
/// <c>engine.deepspeed_io</c> return): batches of <see cref="BatchSize"/> samples of this data-parallel rank's shard,
/// in the order of its <see cref="DistributedSampler"/>. A batch is one tensor per field of the dataset's samples
/// (e.g. inputs and labels of a <c>TensorDataset</c>), stacked along a new first dimension.
/// <para>Each <c>foreach</c> continues the sampler's epoch from its position and, when the epoch is read to its end,
/// moves the sampler to the next epoch (PyTorch leaves that to <c>set_epoch</c>). A batch's tensors are disposed when the
/// next batch is fetched or the loop ends: <c>clone()</c> what must outlive its step.</para>
/// </summary>
public sealed class DeepSpeedDataLoader : IEnumerable<Tensor[]>
{
    private readonly utils.data.Dataset<IList<Tensor>> _dataset;
    private readonly Device? _device;

    /// <summary>Creates a loader over <paramref name="dataset"/>'s shard chosen by <paramref name="sampler"/>.</summary>
    /// <param name="dataset">The samples (e.g. <c>torch.utils.data.TensorDataset(x, y)</c>); its length must be the sampler's.</param>
    /// <param name="batchSize">Samples per batch (DeepSpeed uses train_micro_batch_size_per_gpu).</param>
    /// <param name="sampler">This rank's indices.</param>
    /// <param name="dropLast">Skip an epoch's last batch when it is short (DeepSpeed's <c>dataloader_drop_last</c>).</param>
    /// <param name="device">Where batches are placed (null: where the dataset's tensors are).</param>
    public DeepSpeedDataLoader(utils.data.Dataset<IList<Tensor>> dataset, int batchSize, DistributedSampler sampler, bool dropLast = false, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(sampler);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"the batch size must be at least 1, got {batchSize}.");
        if (dataset.Count != sampler.DatasetLength)
            throw new ArgumentException($"the dataset has {dataset.Count} samples but the sampler was made for {sampler.DatasetLength}.", nameof(sampler));
        _dataset = dataset;
        _device = device;
        BatchSize = batchSize;
        Sampler = sampler;
        DropLast = dropLast;
    }

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }

    /// <summary>The sampler: its <see cref="DistributedSampler.State"/> is where to resume.</summary>
    public DistributedSampler Sampler { get; }

    /// <summary>Whether a short last batch is skipped.</summary>
    public bool DropLast { get; }

    /// <summary>Batches per epoch (DeepSpeed's <c>len(loader)</c>).</summary>
    public long Count => DropLast ? Sampler.NumSamples / BatchSize : (Sampler.NumSamples + BatchSize - 1) / BatchSize;

    /// <summary>The batches left in the current epoch; at the end the sampler moves to the next epoch.</summary>
    public IEnumerator<Tensor[]> GetEnumerator()
    {
        var indices = Sampler.EpochIndices();
        long end = DropLast ? Count * BatchSize : indices.Count;
        Tensor[]? previous = null;
        try
        {
            while (Sampler.Position < end)
            {
                long start = Sampler.Position;
                int size = (int)Math.Min(BatchSize, end - start);
                var batch = Collate(indices, start, size);
                Dispose(previous);
                previous = batch;
                Sampler.Advance(size);   // handed out: a checkpoint saved after this step resumes with the next batch
                yield return batch;
            }
            Sampler.SetEpoch(Sampler.Epoch + 1);
        }
        finally
        {
            Dispose(previous);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private Tensor[] Collate(IReadOnlyList<long> indices, long start, int size)
    {
        var samples = new IList<Tensor>[size];
        try
        {
            for (int i = 0; i < size; i++) samples[i] = _dataset.GetTensor(indices[(int)(start + i)]);
            int fields = samples[0].Count;
            if (samples.Any(s => s.Count != fields))
                throw new InvalidOperationException($"the dataset's samples have different numbers of fields ({string.Join(", ", samples.Select(s => s.Count).Distinct())}).");
            var batch = new Tensor[fields];
            for (int f = 0; f < fields; f++)
            {
                using var stacked = stack(samples.Select(s => s[f]).ToArray());
                batch[f] = _device == null ? stacked.alias() : stacked.to(_device);
            }
            return batch;
        }
        finally
        {
            foreach (var s in samples)
                if (s != null) foreach (var t in s) t.Dispose();
        }
    }

    private static void Dispose(Tensor[]? batch)
    {
        if (batch != null) foreach (var t in batch) t.Dispose();
    }
}
