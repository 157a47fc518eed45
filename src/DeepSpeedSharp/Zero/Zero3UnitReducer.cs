using DeepSpeedSharp.Comm;
using DeepSpeedSharp.DataParallel;
using DeepSpeedSharp.Zero.ZeroPlusPlus;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Reduce-scatters ZeRO-3 gradients in buckets of up to <c>reduce_bucket_size</c> elements, as DeepSpeed's stage 3
/// does: the units' gradients are packed, as backward produces them, into a slot laid out rank-major (row r holds
/// partition r of every parameter in the bucket), the full gradients are dropped, and one equal-chunk reduce-scatter
/// per bucket leaves each rank its partition of every parameter. Every element is summed over the same ranks in the
/// same order whatever the bucket holds, so the result is bit-identical to reducing one parameter at a time.
/// </summary>
/// <remarks>
/// Sizing: when the whole model's gradients fit in <c>reduce_bucket_size</c>, one slot holds them all and each
/// micro-step reduce-scatters once (a small model pays one collective's latency, not one per unit). Otherwise two
/// slots of half the bucket each rotate, so backward goes on while one reduce-scatter runs; a slot always holds at
/// least the largest unit. Results are added into the partition gradient in launch order, when a slot is needed
/// again or at <see cref="Flush"/>. With ZeRO++ qgZ the reduce-scatter is <see cref="QuantizedGradientReduceScatter"/>'s
/// two int8 hops, run on a background thread (one bucket after another, so every rank issues qgZ's collectives in
/// the same order on groups no one else uses) while backward goes on.
/// </remarks>
internal sealed class Zero3UnitReducer : IDisposable
{
    private readonly ProcessGroup group;
    private readonly long columns; // elements of one rank's row in a slot
    private readonly Tensor[] packed;
    private readonly Tensor[] received;
    private readonly Queue<Pending> pending = new();
    private readonly List<Member> members = new();
    private readonly QuantizedGradientReduceScatter? quantized;
    private readonly Tensor gradPartition;
    private readonly GradientScaling scaling;
    private int slot;
    private long fill; // columns used in the current slot
    private bool slotFree;

    private readonly record struct Member(Zero3Parameter Parameter, long Column);

    private sealed record Pending(Work? Work, Task? Quantized, Member[] Members, Tensor Input, Tensor Output);

    private Task? quantizedTail; // the last quantized reduce-scatter started: the next one runs after it

    /// <param name="group">The data-parallel group.</param>
    /// <param name="batches">Every set of parameters that will be reduced together (each unit's, and single parameters).</param>
    /// <param name="partitionElements">Elements of this rank's partition of all parameters (the master buffer's size).</param>
    /// <param name="reduceBucketSize"><c>reduce_bucket_size</c>: full-gradient elements reduced at a time.</param>
    /// <param name="gradPartition">This rank's partition gradient, which the results are added into (at each parameter's master offset).</param>
    /// <param name="scaling">The factors applied before the reduce-scatter (to the packed gradients) and after it (to the result).</param>
    /// <param name="device">Where the packing buffers live.</param>
    /// <param name="quantized">ZeRO++ qgZ's quantized reduce-scatter, or null for the exact one.</param>
    public Zero3UnitReducer(ProcessGroup group, IEnumerable<IReadOnlyList<Zero3Parameter>> batches, long partitionElements, long reduceBucketSize,
        Tensor gradPartition, GradientScaling scaling, Device device, QuantizedGradientReduceScatter? quantized = null)
    {
        this.group = group;
        this.quantized = quantized;
        this.gradPartition = gradPartition;
        this.scaling = scaling;
        long largest = Math.Max(1, batches.Select(b => b.Sum(p => p.PartitionSize)).DefaultIfEmpty(1).Max());
        (columns, int slots) = Layout(Math.Max(1, partitionElements), largest, reduceBucketSize, group.Size);
        packed = new Tensor[slots];
        received = new Tensor[slots];
        for (int k = 0; k < slots; k++)
        {
            packed[k] = empty(columns * group.Size, ScalarType.Float32, device).DetachFromDisposeScope();
            received[k] = empty(columns, ScalarType.Float32, device).DetachFromDisposeScope();
        }
        slotFree = true;
    }

    /// <summary>
    /// Columns per rank row and number of slots for a model whose partition has <paramref name="partition"/> elements
    /// per rank and whose largest unit <paramref name="largestUnit"/> (the estimator uses the same rule).
    /// </summary>
    internal static (long Columns, int Slots) Layout(long partition, long largestUnit, long reduceBucketSize, int ranks)
    {
        if (partition * ranks <= reduceBucketSize) return (partition, 1);
        long half = (reduceBucketSize + 2L * ranks - 1) / (2L * ranks);
        long columns = Math.Min(partition, Math.Max(largestUnit, half));
        return (columns, columns >= partition ? 1 : 2);
    }

    /// <summary>True when one bucket holds every gradient: each micro-step reduce-scatters once, at <see cref="Flush"/>.</summary>
    public bool HoldsAllGradients => packed.Length == 1;

    /// <summary>Bytes of the packing and receiving buffers.</summary>
    public long BufferBytes => packed.Concat(received).Sum(t => t.numel() * t.element_size());

    /// <summary>
    /// Packs the parameters' gradients into the current bucket and drops them; a full bucket is reduce-scattered
    /// asynchronously, its result later added into this rank's slices of the partition gradient.
    /// </summary>
    public void Reduce(IReadOnlyList<Zero3Parameter> parameters)
    {
        var ps = parameters.Where(p => Utils.GradientHandles.HasGradient(p.Param)).ToList();
        if (ps.Count == 0) return;
        long need = ps.Sum(p => p.PartitionSize);
        if (fill > 0 && fill + need > columns) Launch();
        if (!slotFree)
        {
            if (pending.Count == packed.Length) CompleteOldest(); // the slot about to be reused
            slotFree = true;
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var buffer = packed[slot];
        foreach (var p in ps)
        {
            var flat = p.Param.grad!.reshape(-1);
            for (int r = 0; r < group.Size; r++)
            {
                long start = r * p.PartitionSize, real = Math.Clamp(p.Numel - start, 0, p.PartitionSize);
                var block = buffer.narrow(0, r * columns + fill, p.PartitionSize);
                if (real > 0) block.narrow(0, 0, real).copy_(flat.narrow(0, start, real));
                if (real < p.PartitionSize) block.narrow(0, real, p.PartitionSize - real).zero_();
            }
            members.Add(new Member(p, fill));
            fill += p.PartitionSize;
        }
        foreach (var p in ps) p.Param.grad = null; // packed: the full gradients can go now
        foreach (var p in ps) Native.AllocatorTuning.Freed(p.FullBytes);
    }

    /// <summary>
    /// Starts the reduce-scatter of the bucket being filled without waiting: at the end of a micro-step that is not the
    /// last of the step, the reduce-scatters go on during the next forward, and its first bucket (or <see cref="Flush"/>)
    /// takes their results, still in launch order.
    /// </summary>
    public void LaunchLast() => Launch();

    /// <summary>Reduce-scatters the bucket being filled, waits for every reduce-scatter in flight and adds the results, in launch order.</summary>
    public void Flush()
    {
        Launch();
        while (pending.Count > 0) CompleteOldest();
        slot = 0;
        slotFree = true;
    }

    /// <summary>Starts the reduce-scatter of the current slot's <see cref="fill"/> columns.</summary>
    private void Launch()
    {
        if (fill == 0) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var buffer = packed[slot];
        // Rows are columns apart; a partly filled slot is made contiguous (row r moves left to r·fill) for the
        // equal-chunk reduce-scatter. A row whose destination overlaps its source is copied through a temporary.
        if (fill < columns)
            for (int r = 1; r < group.Size; r++)
            {
                var source = buffer.narrow(0, r * columns, fill);
                var target = buffer.narrow(0, r * fill, fill);
                target.copy_((r + 1) * fill > r * columns ? source.clone() : source);
            }
        // The views outlive this call (the collective runs asynchronously): kept out of the scope, disposed on completion.
        var input = buffer.narrow(0, 0, fill * group.Size).DetachFromDisposeScope();
        if (scaling.Before != 1.0) input.mul_(scaling.Before);
        var output = received[slot].narrow(0, 0, fill).DetachFromDisposeScope();
        Work? work = null;
        Task? background = null;
        if (group.Size == 1) output.copy_(input);
        else if (quantized is not null)
        {
            long stride = fill;
            void Run() => quantized.Run(output, input, stride);
            background = quantizedTail = quantizedTail?.ContinueWith(_ => Run(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default) ?? Task.Run(Run);
        }
        else work = group.ReduceScatterAsync(output, input, ReduceOp.Sum);
        pending.Enqueue(new Pending(work, background, members.ToArray(), input, output));
        members.Clear();
        fill = 0;
        slot = (slot + 1) % packed.Length;
        slotFree = false;
    }

    private void CompleteOldest()
    {
        var (work, background, done, input, output) = pending.Dequeue();
        work?.Wait();
        background?.GetAwaiter().GetResult(); // an earlier bucket's failure surfaces with its own exception
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        input.Dispose();
        if (scaling.After != 1.0) output.mul_(scaling.After);
        foreach (var (p, column) in done)
        {
            var target = gradPartition.narrow(0, p.MasterOffset, p.PartitionSize);
            var mine = output.narrow(0, column, p.PartitionSize);
            target.add_(target.device.ToString() == mine.device.ToString() ? mine : mine.to(target.device));
        }
        output.Dispose();
    }

    public void Dispose()
    {
        Flush();
        foreach (var t in packed.Concat(received)) t.Dispose();
    }
}
