using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm;

/// <summary>A group of one rank: collectives are local copies (reductions of one value are the value itself).</summary>
internal sealed unsafe class SingleProcessGroup : ProcessGroup
{
    public SingleProcessGroup(int globalRank, TimeSpan timeout, CommsLogger logger)
        : base([globalRank], globalRank, "single", timeout, logger) { }

    internal override void BarrierCore(in OpContext ctx) { }

    internal override void AllReduceCore(in OpContext ctx, HostBuffer buffer, ReduceOp op) { }

    internal override void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op) =>
        Copy(input, output);

    internal override void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts) => Copy(input, output);

    internal override void BroadcastCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank) { }

    internal override void ReduceCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, ReduceOp op) { }

    internal override void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input) => Copy(input, output);

    internal override void SendCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, int tag) =>
        throw new InvalidOperationException("a group of one rank has no peer to send to.");

    internal override void RecvCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank, int tag) =>
        throw new InvalidOperationException("a group of one rank has no peer to receive from.");

    private static void Copy(HostBuffer from, HostBuffer to)
    {
        if (from.Ptr != to.Ptr && from.Bytes > 0) Buffer.MemoryCopy(from.Ptr, to.Ptr, to.Bytes, from.Bytes);
    }

    protected override void DisposeBackend() { }
}
