using System.Net.Sockets;
using System.Runtime.InteropServices;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Tcp;

/// <summary>
/// TCP backend: a full mesh of sockets between the members. Collectives are pairwise exchanges in N-1 steps
/// (step s: send to rank+s, receive from rank-s), so each rank sends (N-1)/N of the data per phase like a ring,
/// and reductions add the ranks' contributions in rank order 0..N-1 (bit-identical to the shm backend).
/// Every collective starts with a descriptor exchange that detects mismatched calls.
/// </summary>
internal sealed unsafe partial class TcpProcessGroup : ProcessGroup
{
    private const long SegmentBytes = 16 << 20;
    private readonly TcpMesh _mesh;
    private readonly int _n, _me;
    private readonly SocketPump _collPump, _sendPump, _recvPump;
    private readonly nint* _sources;
    private byte* _scratch;
    private long _scratchBytes;

    private TcpProcessGroup(int[] ranks, int globalRank, TimeSpan timeout, CommsLogger logger, TcpMesh mesh)
        : base(ranks, globalRank, "tcp", timeout, logger)
    {
        _mesh = mesh;
        _n = ranks.Length;
        _me = Rank;
        _collPump = new SocketPump(this);
        _sendPump = new SocketPump(this);
        _recvPump = new SocketPump(this);
        _sources = (nint*)NativeMemory.Alloc((nuint)_n, (nuint)sizeof(nint));
        _sendMsgs = new long[_n];
        _recvMsgs = new long[_n];
    }

    public static TcpProcessGroup Create(CommRuntime rt, string prefix, int[] ranks) =>
        new(ranks, rt.Env.Rank, rt.Timeout, rt.Logger, TcpMesh.Build(rt, prefix, ranks)) { Heartbeats = rt.Heartbeats };

    private int To(int step) => (_me + step) % _n;
    private int From(int step) => (_me - step + _n) % _n;

    /// <summary>Collective-channel exchange: send to one peer while receiving from another.</summary>
    private void Exchange(int to, byte* sp, long sl, int from, byte* rp, long rl, in OpContext ctx) =>
        _collPump.Exchange(to, _mesh.Collective[to], sp, sl, from, _mesh.Collective[from], rp, rl, ctx);

    /// <summary>Exchanges descriptors with every peer and fails on any difference.</summary>
    private void Begin(in OpContext ctx)
    {
        var mine = ctx.Descriptor;
        OpDescriptor other;
        for (int s = 1; s < _n; s++)
        {
            Exchange(To(s), (byte*)&mine, OpDescriptor.SizeInBytes, From(s), (byte*)&other, OpDescriptor.SizeInBytes, ctx);
            if (!other.Equals(mine))
                throw new DistributedException(ctx.Name, ctx.ErrorSeq, [],
                    $"collective mismatch at sequence number {ctx.Label.Seq}: rank {GlobalRank} called {mine.Describe()} but rank {GetGlobalRank(From(s))} called {other.Describe()}.");
        }
    }

    internal DistributedException PeerFailed(in OpContext ctx, int peer, string why)
    {
        var missing = _mesh.ClosedPeers().Select(GetGlobalRank).ToList();
        if (missing.Count == 0) missing.Add(GetGlobalRank(peer));
        return PeersGone(ctx, missing, $"was lost ({why}) without a last heartbeat: killed or crashed");
    }

    internal void CheckHealth(in OpContext ctx, int waitingOn)
    {
        // A send or receive needs only its peer: another member that finished and closed the group (it disposed it) is
        // no failure of this one. A collective needs every member.
        var closed = _mesh.ClosedPeers();
        if (ctx.Label.Peer >= 0) closed.RemoveAll(p => p != waitingOn);
        if (closed.Count > 0)
        {
            var missing = closed.Select(GetGlobalRank).ToList();
            throw PeersGone(ctx, missing, "died (it closed its connections without a last heartbeat: killed or crashed)");
        }
        ThrowIfFrozen(ctx, ctx.Seq >= 0 ? GlobalRanks : [GetGlobalRank(waitingOn)]); // a collective waits for every member
        if (DateTime.UtcNow > ctx.Deadline) throw TimedOut(ctx, [GetGlobalRank(waitingOn)]);
    }

    private byte* Scratch(long bytes)
    {
        if (bytes > _scratchBytes)
        {
            NativeMemory.Free(_scratch);
            _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            new Span<byte>(_scratch, (int)Math.Min(bytes, int.MaxValue)).Clear(); // pre-touch once
            _scratchBytes = bytes;
        }
        return _scratch;
    }

    private void Part(long n, int k, int elementSize, out long lo, out long len)
    {
        long unit = Math.Max(1, 64 / elementSize);
        long per = ((n + _n - 1) / _n + unit - 1) / unit * unit;
        lo = Math.Min(k * per, n);
        len = Math.Min(per, n - lo);
    }

    private static void Copy(byte* from, byte* to, long bytes)
    {
        if (bytes > 0 && from != to) Buffer.MemoryCopy(from, to, bytes, bytes);
    }

    protected override void DisposeBackend()
    {
        _mesh.Dispose();
        NativeMemory.Free(_sources);
        NativeMemory.Free(_scratch);
    }
}
