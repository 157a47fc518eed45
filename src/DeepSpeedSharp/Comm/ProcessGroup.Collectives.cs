using DeepSpeedSharp.Comm.Core;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Comm;

public abstract partial class ProcessGroup
{
    /// <summary>Blocks until every member reached the barrier.</summary>
    public void Barrier() => BarrierAsync().Wait();

    /// <summary>Asynchronous <see cref="Barrier"/>.</summary>
    public Work BarrierAsync() => Submit(Lane.Collective, OpCode.Barrier, -1, 0, 0, 0, 0, (ctx, _) => BarrierCore(ctx));

    /// <summary>Reduces <paramref name="tensor"/> across the group in place; every rank gets the result.</summary>
    public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum) => AllReduceAsync(tensor, op).Wait();

    /// <summary>Asynchronous <see cref="AllReduce"/>.</summary>
    public Work AllReduceAsync(Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        CheckTensor(tensor, nameof(tensor));
        CheckOp(tensor, op);
        long bytes = Bytes(tensor);
        return Submit(Lane.Collective, OpCode.AllReduce, (int)tensor.dtype, tensor.numel(), (long)op, bytes, 2 * Share(bytes), (ctx, pool) =>
        {
            var b = pool.Stage(tensor, 0, copyIn: true);
            AllReduceCore(ctx, b, op);
            pool.Unstage(tensor, 0);
        });
    }

    /// <summary>Reduces <paramref name="input"/> (Size equal chunks) and leaves chunk <see cref="Rank"/> of the result in <paramref name="output"/>.</summary>
    public void ReduceScatter(Tensor output, Tensor input, ReduceOp op = ReduceOp.Sum) => ReduceScatterAsync(output, input, op).Wait();

    /// <summary>Reduce-scatter with uneven chunks: chunk i has <paramref name="counts"/>[i] elements.</summary>
    public void ReduceScatter(Tensor output, Tensor input, IReadOnlyList<long> counts, ReduceOp op = ReduceOp.Sum) =>
        ReduceScatterAsync(output, input, counts, op).Wait();

    /// <summary>Asynchronous equal-chunk <see cref="ReduceScatter(Tensor, Tensor, ReduceOp)"/>.</summary>
    public Work ReduceScatterAsync(Tensor output, Tensor input, ReduceOp op = ReduceOp.Sum)
    {
        CheckTensor(output, nameof(output));
        if (input.numel() != output.numel() * Size)
            throw new ArgumentException($"rank {GlobalRank}: reduce_scatter needs input.numel ({input.numel()}) = group size ({Size}) × output.numel ({output.numel()}).");
        return ReduceScatterAsync(output, input, Enumerable.Repeat(output.numel(), Size).ToArray(), op);
    }

    /// <summary>Asynchronous uneven <see cref="ReduceScatter(Tensor, Tensor, IReadOnlyList{long}, ReduceOp)"/>.</summary>
    public Work ReduceScatterAsync(Tensor output, Tensor input, IReadOnlyList<long> counts, ReduceOp op = ReduceOp.Sum)
    {
        CheckTensor(output, nameof(output));
        CheckTensor(input, nameof(input));
        CheckSameDType(output, input, "reduce_scatter");
        CheckOp(input, op);
        var c = CheckCounts(counts, input.numel(), "reduce_scatter", "input");
        if (output.numel() != c[Rank])
            throw new ArgumentException($"rank {GlobalRank}: reduce_scatter output has {output.numel()} elements but counts[{Rank}] = {c[Rank]}.");
        long bytes = Bytes(input);
        return Submit(Lane.Collective, OpCode.ReduceScatter, (int)input.dtype, input.numel(), (long)op, bytes, Share(bytes), (ctx, pool) =>
        {
            var i = pool.Stage(input, 0, copyIn: true);
            var o = pool.Stage(output, 1, copyIn: false);
            ReduceScatterCore(ctx, o, i, c, op);
            pool.Unstage(output, 1);
        });
    }

    /// <summary>Gathers every rank's <paramref name="input"/> into the flat <paramref name="output"/> (Size × input.numel, rank order).</summary>
    public void AllGather(Tensor output, Tensor input) => AllGatherAsync(output, input).Wait();

    /// <summary>Gathers every rank's <paramref name="input"/> into <paramref name="outputs"/>[rank].</summary>
    public void AllGather(IList<Tensor> outputs, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        if (outputs.Count != Size) throw new ArgumentException($"rank {GlobalRank}: all_gather needs {Size} output tensors (one per rank), got {outputs.Count}.");
        CheckTensor(input, nameof(input));
        foreach (var o in outputs)
        {
            CheckSameDType(o, input, "all_gather");
            if (o.numel() != input.numel()) throw new ArgumentException($"rank {GlobalRank}: all_gather outputs must each have input.numel ({input.numel()}) elements; one has {o.numel()}.");
        }
        using var flat = empty(input.numel() * Size, input.dtype);
        AllGather(flat, input);
        using var _ = no_grad();
        for (int r = 0; r < Size; r++)
        {
            using var part = flat.narrow(0, r * input.numel(), input.numel());
            using var shaped = part.view(outputs[r].shape);
            outputs[r].copy_(shaped);
        }
    }

    /// <summary>All-gather with uneven sizes: rank i contributes <paramref name="counts"/>[i] elements.</summary>
    public void AllGather(Tensor output, Tensor input, IReadOnlyList<long> counts) => AllGatherAsync(output, input, counts).Wait();

    /// <summary>Asynchronous flat <see cref="AllGather(Tensor, Tensor)"/>.</summary>
    public Work AllGatherAsync(Tensor output, Tensor input)
    {
        CheckTensor(input, nameof(input));
        if (output.numel() != input.numel() * Size)
            throw new ArgumentException($"rank {GlobalRank}: all_gather needs output.numel ({output.numel()}) = group size ({Size}) × input.numel ({input.numel()}).");
        return AllGatherAsync(output, input, Enumerable.Repeat(input.numel(), Size).ToArray(), uneven: false);
    }

    /// <summary>Asynchronous uneven <see cref="AllGather(Tensor, Tensor, IReadOnlyList{long})"/>.</summary>
    public Work AllGatherAsync(Tensor output, Tensor input, IReadOnlyList<long> counts) => AllGatherAsync(output, input, counts, uneven: true);

    private Work AllGatherAsync(Tensor output, Tensor input, IReadOnlyList<long> counts, bool uneven)
    {
        CheckTensor(output, nameof(output));
        CheckTensor(input, nameof(input));
        CheckSameDType(output, input, "all_gather");
        var c = CheckCounts(counts, output.numel(), "all_gather", "output");
        if (input.numel() != c[Rank])
            throw new ArgumentException($"rank {GlobalRank}: all_gather input has {input.numel()} elements but counts[{Rank}] = {c[Rank]}.");
        long bytes = Bytes(output);
        return Submit(Lane.Collective, OpCode.AllGather, (int)input.dtype, output.numel(), uneven ? 1 : 0, bytes, Bytes(input) * (Size - 1), (ctx, pool) =>
        {
            var i = pool.Stage(input, 0, copyIn: true);
            var o = pool.Stage(output, 1, copyIn: false);
            AllGatherCore(ctx, o, i, c);
            pool.Unstage(output, 1);
        });
    }

    /// <summary>Copies <paramref name="tensor"/> of global rank <paramref name="src"/> to every member.</summary>
    public void Broadcast(Tensor tensor, int src) => BroadcastAsync(tensor, src).Wait();

    /// <summary>Asynchronous <see cref="Broadcast"/>.</summary>
    public Work BroadcastAsync(Tensor tensor, int src)
    {
        CheckTensor(tensor, nameof(tensor));
        int s = CheckPeer(src, "src");
        long bytes = Bytes(tensor);
        // The source sends the tensor to each other member (the direct algorithm of every backend here).
        return Submit(Lane.Collective, OpCode.Broadcast, (int)tensor.dtype, tensor.numel(), src, bytes, s == Rank ? bytes * (Size - 1) : 0, (ctx, pool) =>
        {
            var b = pool.Stage(tensor, 0, copyIn: s == Rank);
            BroadcastCore(ctx, b, s);
            pool.Unstage(tensor, 0);
        });
    }

    /// <summary>Reduces <paramref name="tensor"/> onto global rank <paramref name="dst"/> (other ranks' tensors are unchanged).</summary>
    public void Reduce(Tensor tensor, int dst, ReduceOp op = ReduceOp.Sum) => ReduceAsync(tensor, dst, op).Wait();

    /// <summary>Asynchronous <see cref="Reduce"/>.</summary>
    public Work ReduceAsync(Tensor tensor, int dst, ReduceOp op = ReduceOp.Sum)
    {
        CheckTensor(tensor, nameof(tensor));
        CheckOp(tensor, op);
        int d = CheckPeer(dst, "dst");
        long bytes = Bytes(tensor);
        return Submit(Lane.Collective, OpCode.Reduce, (int)tensor.dtype, tensor.numel(), (long)op | ((long)dst << 4), bytes, d == Rank ? 0 : bytes, (ctx, pool) =>
        {
            var b = pool.Stage(tensor, 0, copyIn: true);
            ReduceCore(ctx, b, d, op);
            if (d == Rank) pool.Unstage(tensor, 0);
        });
    }

    /// <summary>Block j of <paramref name="input"/> goes to rank j; block i of <paramref name="output"/> comes from rank i (equal blocks).</summary>
    public void AllToAll(Tensor output, Tensor input) => AllToAllAsync(output, input).Wait();

    /// <summary>Asynchronous <see cref="AllToAll"/>.</summary>
    public Work AllToAllAsync(Tensor output, Tensor input)
    {
        CheckTensor(output, nameof(output));
        CheckTensor(input, nameof(input));
        CheckSameDType(output, input, "all_to_all");
        if (input.numel() != output.numel() || input.numel() % Size != 0)
            throw new ArgumentException($"rank {GlobalRank}: all_to_all needs input and output of equal numel divisible by the group size {Size}; got {input.numel()} and {output.numel()}.");
        long bytes = Bytes(input);
        return Submit(Lane.Collective, OpCode.AllToAll, (int)input.dtype, input.numel(), 0, bytes, Share(bytes), (ctx, pool) =>
        {
            var i = pool.Stage(input, 0, copyIn: true);
            var o = pool.Stage(output, 1, copyIn: false);
            AllToAllCore(ctx, o, i);
            pool.Unstage(output, 1);
        });
    }

    /// <summary>Sends <paramref name="tensor"/> to global rank <paramref name="dst"/>. Messages between two ranks arrive in order; the receiver's tag, dtype and size must match.</summary>
    public void Send(Tensor tensor, int dst, int tag = 0) => SendAsync(tensor, dst, tag).Wait();

    /// <summary>Receives into <paramref name="tensor"/> from global rank <paramref name="src"/>.</summary>
    public void Recv(Tensor tensor, int src, int tag = 0) => RecvAsync(tensor, src, tag).Wait();

    /// <summary>Asynchronous <see cref="Send"/> (sends run in order on their own worker, independent of collectives).</summary>
    public Work SendAsync(Tensor tensor, int dst, int tag = 0)
    {
        CheckTensor(tensor, nameof(tensor));
        int d = CheckPeer(dst, "dst");
        if (d == Rank) throw new ArgumentException($"rank {GlobalRank}: send to itself (dst={dst}) is not allowed.");
        long bytes = Bytes(tensor);
        return Submit(Lane.Send, OpCode.Send, (int)tensor.dtype, tensor.numel(), tag, bytes, bytes, (ctx, pool) =>
        {
            var b = pool.Stage(tensor, 0, copyIn: true);
            SendCore(ctx, b, d, tag);
        }, peer: dst);
    }

    /// <summary>Asynchronous <see cref="Recv"/> (receives run in order on their own worker).</summary>
    public Work RecvAsync(Tensor tensor, int src, int tag = 0)
    {
        CheckTensor(tensor, nameof(tensor));
        int s = CheckPeer(src, "src");
        if (s == Rank) throw new ArgumentException($"rank {GlobalRank}: recv from itself (src={src}) is not allowed.");
        return Submit(Lane.Recv, OpCode.Recv, (int)tensor.dtype, tensor.numel(), tag, Bytes(tensor), 0, (ctx, pool) =>
        {
            var b = pool.Stage(tensor, 0, copyIn: false);
            RecvCore(ctx, b, s, tag);
            pool.Unstage(tensor, 0);
        }, peer: src);
    }

    private void CheckOp(Tensor t, ReduceOp op)
    {
        if (t.dtype == ScalarType.Int8)
            throw new ArgumentException($"rank {GlobalRank}: int8 tensors are moved (all_gather, broadcast, all_to_all, send/recv) but not reduced; reduce in int32 or a floating-point type.");
        if (op == ReduceOp.Avg && !CommDType.IsFloating(t.dtype))
            throw new ArgumentException($"rank {GlobalRank}: ReduceOp.Avg needs a floating-point tensor; got {t.dtype}. Use ReduceOp.Sum and divide.");
        if (!Enum.IsDefined(op)) throw new ArgumentOutOfRangeException(nameof(op), $"unknown ReduceOp {(int)op}; use Sum, Avg, Max or Min.");
    }

    private long[] CheckCounts(IReadOnlyList<long> counts, long total, string op, string which)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Count != Size) throw new ArgumentException($"rank {GlobalRank}: {op} needs {Size} counts (one per rank), got {counts.Count}.");
        var c = counts.ToArray();
        if (c.Any(x => x < 0)) throw new ArgumentException($"rank {GlobalRank}: {op} counts must be ≥ 0; got [{string.Join(",", c)}].");
        if (c.Sum() != total) throw new ArgumentException($"rank {GlobalRank}: {op} counts sum to {c.Sum()} but {which}.numel is {total}.");
        return c;
    }
}
