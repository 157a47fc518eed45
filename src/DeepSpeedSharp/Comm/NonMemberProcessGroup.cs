using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// What <see cref="Dist.NewGroup(IReadOnlyList{int})"/> returns on ranks outside the new group (torch's NON_GROUP_MEMBER):
/// membership queries work, operations throw.
/// </summary>
internal sealed class NonMemberProcessGroup : ProcessGroup
{
    public NonMemberProcessGroup(IReadOnlyList<int> globalRanks, int globalRank, string backend, TimeSpan timeout, CommsLogger logger)
        : base(globalRanks, globalRank, backend, timeout, logger) { }

    private Exception NotMember() => new InvalidOperationException($"global rank {GlobalRank} is not a member of this group ({string.Join(",", GlobalRanks)}).");
    internal override void BarrierCore(in OpContext ctx) => throw NotMember();
    internal override void AllReduceCore(in OpContext ctx, HostBuffer buffer, ReduceOp op) => throw NotMember();
    internal override void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op) => throw NotMember();
    internal override void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts) => throw NotMember();
    internal override void BroadcastCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank) => throw NotMember();
    internal override void ReduceCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, ReduceOp op) => throw NotMember();
    internal override void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input) => throw NotMember();
    internal override void SendCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, int tag) => throw NotMember();
    internal override void RecvCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank, int tag) => throw NotMember();
    protected override void DisposeBackend() { }
}
