using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.DataParallel;

/// <summary>
/// <c>overlap_comm</c>: launches a bucket's asynchronous reduction as soon as every parameter overlapping it has its
/// final gradient (<see cref="GradientReadiness"/>), while backward goes on. Buckets are the same ranges as without
/// overlap, so the reduced values are identical; a fixed pool of packing buffers bounds the extra memory (when all are
/// in flight, the oldest is finished first). The strategy supplies how a packed bucket is reduced and consumed.
/// </summary>
internal sealed class OverlappedReduction : IDisposable
{
    private readonly GradientBuckets[] pool;
    private readonly Queue<(int Slot, long Start, long End, Work Work)> inFlight = new();
    private readonly (long Start, long End)[] ranges;
    private readonly int[][] bucketParams;
    private readonly int[] remaining;
    private readonly Func<int, Tensor, long, long, Work> launch;
    private readonly Action<int, GradientBuckets, Tensor, long, long> complete;
    private int nextSlot;

    /// <param name="layout">The flat layout the buckets cover.</param>
    /// <param name="bucketElements">reduce_bucket_size.</param>
    /// <param name="commType">The dtype buckets travel in.</param>
    /// <param name="device">Where the buffers live.</param>
    /// <param name="poolSize">Packing buffers (2: one reducing while the next is packed).</param>
    /// <param name="launch">Starts the reduction of a packed bucket (slot, view, start, end).</param>
    /// <param name="complete">Consumes a finished bucket (slot, its buffer, view, start, end).</param>
    public OverlappedReduction(FlatLayout layout, long bucketElements, ScalarType commType, Device device, int poolSize,
        Func<int, Tensor, long, long, Work> launch, Action<int, GradientBuckets, Tensor, long, long> complete)
    {
        pool = Enumerable.Range(0, poolSize).Select(_ => new GradientBuckets(layout, bucketElements, commType, device)).ToArray();
        ranges = pool[0].Ranges().ToArray();
        bucketParams = ranges.Select(r => layout.Pieces(r.Start, r.End).Select(p => p.Index).Distinct().ToArray()).ToArray();
        remaining = new int[ranges.Length];
        this.launch = launch;
        this.complete = complete;
        Reset();
    }

    /// <summary>Bytes of the packing buffers.</summary>
    public long Bytes => pool.Sum(b => b.Bytes);

    /// <summary>Parameters became ready: launch every bucket that is now complete (last bucket first, as backward runs).</summary>
    public void ParametersReady(IReadOnlyList<int> parameters)
    {
        var set = parameters.ToHashSet();
        for (int b = ranges.Length - 1; b >= 0; b--)
        {
            if (remaining[b] <= 0) continue;
            remaining[b] -= bucketParams[b].Count(set.Contains);
            if (remaining[b] == 0) Launch(b);
        }
    }

    /// <summary>Waits for every reduction in flight and consumes them in launch order; then resets for the next pass.</summary>
    public void Finish()
    {
        for (int b = ranges.Length - 1; b >= 0; b--)
            if (remaining[b] > 0) Launch(b); // buckets with no parameters (padding only)
        while (inFlight.Count > 0) CompleteOldest();
        Reset();
    }

    private void Launch(int b)
    {
        remaining[b] = -1;
        if (inFlight.Count == pool.Length) CompleteOldest();
        int slot = nextSlot;
        nextSlot = (nextSlot + 1) % pool.Length;
        var (start, end) = ranges[b];
        var view = pool[slot].Pack(start, end);
        inFlight.Enqueue((slot, start, end, launch(slot, view, start, end)));
    }

    private void CompleteOldest()
    {
        var (slot, start, end, work) = inFlight.Dequeue();
        work.Wait();
        complete(slot, pool[slot], pool[slot].View(end - start), start, end);
    }

    private void Reset()
    {
        for (int b = 0; b < ranges.Length; b++) remaining[b] = bucketParams[b].Length == 0 ? 1 : bucketParams[b].Length;
        nextSlot = 0;
    }

    public void Dispose()
    {
        foreach (var b in pool) b.Dispose();
    }
}
