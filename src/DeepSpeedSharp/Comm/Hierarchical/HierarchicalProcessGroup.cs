using DeepSpeedSharp.Comm.Core;
using DeepSpeedSharp.Comm.Shm;
using DeepSpeedSharp.Comm.Tcp;

namespace DeepSpeedSharp.Comm.Hierarchical;

/// <summary>
/// A group spanning several hosts: shared memory inside each host, TCP between hosts. All-reduce is an intra-host
/// reduce-scatter (shm), an inter-host all-reduce of each rank's part among the ranks with the same local index on
/// every host (tcp), then an intra-host all-gather (shm), so each byte crosses the network once per host rather than
/// once per rank. 16-bit tensors are reduced in a float32 copy and rounded once; Avg is a Sum divided once at the end.
/// All-gather and reduce-scatter are host-aware too (HierarchicalProcessGroup.Gather.cs). The other operations (and
/// all of them when hosts have different rank counts) run on a flat TCP group of all members. Results are
/// deterministic; the sum is associated per host ((host A) + (host B)), so floating-point results can differ from the
/// flat order in the last bit, while integer-valued data gives identical results.
/// </summary>
internal sealed unsafe partial class HierarchicalProcessGroup : ProcessGroup
{
    private readonly ProcessGroup _intra, _flat;
    private readonly ProcessGroup? _inter;
    private readonly int _local, _localSize;
    /// <summary>Group ranks of each host's members (host order, then local index).</summary>
    private readonly int[][] _hostRanks;
    private long _intraSeq, _interSeq, _flatSeq;

    private HierarchicalProcessGroup(int[] ranks, int globalRank, TimeSpan timeout, CommsLogger logger,
        ProcessGroup intra, ProcessGroup? inter, ProcessGroup flat, int[][] hostRanks)
        : base(ranks, globalRank, "hierarchical", timeout, logger)
    {
        _hostRanks = hostRanks;
        _intra = intra;
        _inter = inter;
        _flat = flat;
        _local = intra.Rank;
        _localSize = intra.Size;
    }

    /// <summary>Builds the host groups, the cross-host groups (when every host has the same number of members) and the flat group.</summary>
    public static HierarchicalProcessGroup Create(CommRuntime rt, string prefix, int[] ranks)
    {
        int me = rt.Env.Rank;
        var hostOrder = ranks.Select(r => rt.Hosts[r]).Distinct().ToArray();
        var byHost = hostOrder.Select(h => ranks.Where(r => rt.Hosts[r] == h).ToArray()).ToArray();
        int myHost = Array.IndexOf(hostOrder, rt.Hosts[me]);
        var local = byHost[myHost];
        int localIndex = Array.IndexOf(local, me);
        bool uniform = byHost.All(h => h.Length == local.Length);
        var built = new List<ProcessGroup>();
        try
        {
            ProcessGroup intra = local.Length == 1 ? new SingleProcessGroup(me, rt.Timeout, rt.Logger)
                : ShmProcessGroup.Create(rt, $"{prefix}host{myHost}/", local);
            built.Add(intra);
            ProcessGroup? inter = null;
            if (uniform)
            {
                var peers = byHost.Select(h => h[localIndex]).ToArray();
                inter = peers.Length == 1 ? new SingleProcessGroup(me, rt.Timeout, rt.Logger)
                    : TcpProcessGroup.Create(rt, $"{prefix}cross{localIndex}/", peers);
                built.Add(inter);
            }
            var flat = TcpProcessGroup.Create(rt, $"{prefix}flat/", ranks);
            var hostRanks = byHost.Select(h => h.Select(r => Array.IndexOf(ranks, r)).ToArray()).ToArray();
            return new HierarchicalProcessGroup(ranks, me, rt.Timeout, rt.Logger, intra, inter, flat, hostRanks);
        }
        catch
        {
            foreach (var g in built) g.Dispose();
            throw;
        }
    }

    private static OpContext Sub(in OpContext ctx, ref long seq, OpCode code, int dtype, long count, long extra)
    {
        long s = seq++;
        return new OpContext(ctx.Name, s, new OpDescriptor(code, dtype, count, extra, s), ctx.Deadline, ctx.Label);
    }

    private DistributedException Wrap(in OpContext ctx, string stage, DistributedException e) =>
        new(ctx.Name, ctx.ErrorSeq, e.MissingRanks, $"{ctx.Label} on rank {GlobalRank} failed in its {stage} stage: {e.Message}", e);

    internal override void AllReduceCore(in OpContext ctx, HostBuffer buf, ReduceOp op)
    {
        if (_inter == null) { _flat.AllReduceCore(Sub(ctx, ref _flatSeq, OpCode.AllReduce, (int)buf.DType, buf.Count, (long)op), buf, op); return; }
        bool half = ElementConvert.IsHalf(buf.DType);
        var work = buf;
        if (half)
        {
            work = new HostBuffer(Scratch(buf.Count * 4), buf.Count, TorchSharp.torch.ScalarType.Float32);
            ElementConvert.ToFloat(buf.DType, buf.Ptr, (float*)work.Ptr, buf.Count);
        }
        var rop = op == ReduceOp.Avg ? ReduceOp.Sum : op;
        var counts = new long[_localSize];
        for (int k = 0; k < _localSize; k++) counts[k] = Part(work.Count, k, work.ElementSize, out _);
        Part(work.Count, _local, work.ElementSize, out long lo);
        var mine = work.Slice(lo, counts[_local]);
        string stage = "intra-host reduce-scatter";
        try
        {
            _intra.ReduceScatterCore(Sub(ctx, ref _intraSeq, OpCode.ReduceScatter, (int)work.DType, work.Count, (long)rop), mine, work, counts, rop);
            stage = "inter-host all-reduce";
            _inter.AllReduceCore(Sub(ctx, ref _interSeq, OpCode.AllReduce, (int)work.DType, mine.Count, (long)rop), mine, rop);
            if (op == ReduceOp.Avg && !half) ElementConvert.Divide(work.DType, mine.Ptr, mine.Count, Size);
            stage = "intra-host all-gather";
            _intra.AllGatherCore(Sub(ctx, ref _intraSeq, OpCode.AllGather, (int)work.DType, work.Count, 1), work, mine, counts);
        }
        catch (DistributedException e) { throw Wrap(ctx, stage, e); }
        if (half) ElementConvert.FromFloat(buf.DType, (float*)work.Ptr, buf.Ptr, buf.Count, op == ReduceOp.Avg ? Size : 1);
    }

    /// <summary>
    /// All-reduce sends only its inter-host stage's 2(H−1)/H of a 1/L part across hosts; all-gather sends this rank's
    /// chunk to H − 1 hosts, reduce-scatter its host's partial sum for each of H − 1 hosts' ranks of its local index
    /// (a chunk each, 1/N of the message); the rest use the flat group.
    /// </summary>
    internal override long CrossHostBytes(OpCode code, long messageBytes, long sentBytes)
    {
        if (_inter == null) return base.CrossHostBytes(code, messageBytes, sentBytes);
        int hosts = Size / _localSize;
        return code switch
        {
            OpCode.AllReduce => 2L * (hosts - 1) * messageBytes / ((long)hosts * _localSize),
            OpCode.AllGather => Size <= 1 ? 0 : sentBytes / (Size - 1) * (hosts - 1),
            OpCode.ReduceScatter when messageBytes > 0 => (hosts - 1) * messageBytes / Size,
            _ => base.CrossHostBytes(code, messageBytes, sentBytes),
        };
    }

    /// <summary>Length of sub-range k when n elements are split over the host's ranks (64-byte aligned), and its start.</summary>
    private long Part(long n, int k, int elementSize, out long lo)
    {
        long unit = Math.Max(1, 64 / elementSize);
        long per = ((n + _localSize - 1) / _localSize + unit - 1) / unit * unit;
        lo = Math.Min(k * per, n);
        return Math.Min(per, n - lo);
    }

    private OpContext Flat(in OpContext ctx) => Sub(ctx, ref _flatSeq, (OpCode)ctx.Descriptor.Code, ctx.Descriptor.DType, ctx.Descriptor.Count, ctx.Descriptor.Extra);

    internal override void BarrierCore(in OpContext ctx) => _flat.BarrierCore(Flat(ctx));
    internal override void BroadcastCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank) => _flat.BroadcastCore(Flat(ctx), buffer, srcGroupRank);
    internal override void ReduceCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, ReduceOp op) => _flat.ReduceCore(Flat(ctx), buffer, dstGroupRank, op);
    internal override void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input) => _flat.AllToAllCore(Flat(ctx), output, input);
    internal override void SendCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, int tag) => _flat.SendCore(ctx, buffer, dstGroupRank, tag);
    internal override void RecvCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank, int tag) => _flat.RecvCore(ctx, buffer, srcGroupRank, tag);

    protected override void DisposeBackend()
    {
        _intra.Dispose();
        _inter?.Dispose();
        _flat.Dispose();
        FreeScratch();
    }
}
