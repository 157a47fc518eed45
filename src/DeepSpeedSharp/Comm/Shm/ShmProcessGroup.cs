using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Shm;

/// <summary>
/// Shared-memory backend for ranks on one host. Layout of the segment: a 256-byte control block per rank
/// (arrival counter and its sleeper count, pid, two descriptor slots), a 256-byte control block per ordered rank pair for
/// point-to-point, three rotating banks of one fixed-size slot per rank for collectives, and two
/// chunk buffers per ordered pair for point-to-point. Ranks synchronise with monotonically increasing
/// counters and spin-then-yield waits; reductions run in rank order 0..N-1 on vectorised kernels.
/// </summary>
internal sealed unsafe partial class ShmProcessGroup : ProcessGroup
{
    private const int ControlBytes = 256;
    private const int Banks = 3;
    private readonly ShmSegment _segment;
    private readonly int _n, _me;
    private readonly long _slotBytes, _p2pChunk;
    private readonly byte* _ctl, _pairCtl, _data, _p2pData;
    private readonly nint* _sources;
    private readonly long _spinTicks;
    private long _epoch;
    private int _bank;

    private ShmProcessGroup(int[] ranks, int globalRank, TimeSpan timeout, CommsLogger logger, ShmSegment segment, long slotBytes, long p2pChunk, int spinMicros)
        : base(ranks, globalRank, "shm", timeout, logger)
    {
        _segment = segment;
        _n = ranks.Length;
        _me = Rank;
        _slotBytes = slotBytes;
        _p2pChunk = p2pChunk;
        _ctl = segment.Pointer;
        _pairCtl = _ctl + (long)_n * ControlBytes;
        _data = _pairCtl + (long)_n * _n * ControlBytes;
        _p2pData = _data + (long)Banks * _n * slotBytes;
        _sources = (nint*)NativeMemory.Alloc((nuint)_n, (nuint)sizeof(nint));
        _sendChunks = new long[_n]; _recvChunks = new long[_n]; _sendMsgs = new long[_n]; _recvMsgs = new long[_n];
        *(int*)(_ctl + (long)_me * ControlBytes + 16) = Environment.ProcessId;
        _spinTicks = Stopwatch.Frequency * (ranks.Length > Environment.ProcessorCount ? 2 : spinMicros) / 1_000_000;
    }

    private static long SegmentSize(int n, long slot, long p2p) => (long)n * ControlBytes + (long)n * n * ControlBytes + (long)Banks * n * slot + 2L * n * n * p2p;

    /// <summary>Builds the group: member 0 creates the segment, the others map it, then the file is removed.</summary>
    public static ShmProcessGroup Create(CommRuntime rt, string prefix, int[] ranks)
    {
        var store = rt.Store!;
        int me = Array.IndexOf(ranks, rt.Env.Rank);
        long slot = rt.Env.Tuning.ShmSlotBytes;
        long p2p = Math.Clamp((8L << 20) / ((long)ranks.Length * ranks.Length) / 4096 * 4096, 16 << 10, 256 << 10);
        long size = SegmentSize(ranks.Length, slot, p2p);
        ShmSegment seg;
        if (me == 0)
        {
            string path = ShmJobFiles.PathFor(rt.JobId, prefix.TrimEnd('/').Replace('/', '-'));
            seg = ShmSegment.Create(path, size);
            store.Set(prefix + "shm", $"{path}|{slot}|{p2p}|{Convert.ToHexString(seg.Identity)}");
        }
        else
        {
            var parts = rt.AwaitKey(prefix + "shm").Split('|');
            slot = long.Parse(parts[1]);
            p2p = long.Parse(parts[2]);
            seg = ShmSegment.Open(parts[0], SegmentSize(ranks.Length, slot, p2p), Convert.FromHexString(parts[3]));
        }
        var group = new ShmProcessGroup(ranks, rt.Env.Rank, rt.Timeout, rt.Logger, seg, slot, p2p, rt.Env.Tuning.ShmSpinMicros) { Heartbeats = rt.Heartbeats };
        store.Set($"{prefix}mapped/{me}", "1");
        if (me == 0)
        {
            for (int r = 1; r < ranks.Length; r++) rt.AwaitKey($"{prefix}mapped/{r}");
            seg.Unlink();
        }
        return group;
    }

    private long* Arrival(int r) => (long*)(_ctl + (long)r * ControlBytes);
    private int PidOf(int r) => Volatile.Read(ref *(int*)(_ctl + (long)r * ControlBytes + 16));
    private OpDescriptor* DescSlot(int r, long seq) => (OpDescriptor*)(_ctl + (long)r * ControlBytes + 64 + (seq & 1) * 64);
    private byte* Slot(int bank, int r) => _data + ((long)bank * _n + r) * _slotBytes;

    /// <summary>Everyone arrives at the next epoch; returns when all have.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Sync(in OpContext ctx)
    {
        long target = ++_epoch;
        SharedCounter.Post((byte*)Arrival(_me), target);
        for (int r = 0; r < _n; r++) WaitFor(Arrival(r), target, r, ctx, collective: true);
    }

    /// <summary>Publishes this rank's descriptor, synchronises, and checks every rank runs the same operation.</summary>
    private void Begin(in OpContext ctx)
    {
        Publish(ctx);
        Sync(ctx);
        CheckDescriptors(ctx);
    }

    /// <summary>Publishes this rank's descriptor for <see cref="CheckDescriptors"/> after the next synchronisation.</summary>
    private void Publish(in OpContext ctx) => *DescSlot(_me, ctx.Seq) = ctx.Descriptor;

    /// <summary>After a synchronisation that followed <see cref="Publish"/>: throws unless every rank runs the same operation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckDescriptors(in OpContext ctx)
    {
        for (int r = 0; r < _n; r++)
        {
            var other = *DescSlot(r, ctx.Seq);
            if (!other.Equals(ctx.Descriptor))
                throw new DistributedException(ctx.Name, ctx.ErrorSeq, [],
                    $"collective mismatch at sequence number {ctx.Label.Seq}: rank {GlobalRank} called {ctx.Descriptor.Describe()} but rank {GetGlobalRank(r)} called {other.Describe()}.");
        }
    }

    /// <summary>
    /// Waits until *counter ≥ target: spins briefly (not at all when there are more ranks than cores), then sleeps on
    /// the counter's futex, checking every 200 ms that the peers are alive and the deadline has not passed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void WaitFor(long* counter, long target, int peer, in OpContext ctx, bool collective)
    {
        if (Volatile.Read(ref *counter) >= target) return;
        long start = Stopwatch.GetTimestamp(), nextCheck = start + Stopwatch.Frequency / 5;
        while (Stopwatch.GetTimestamp() - start < _spinTicks)
        {
            Thread.SpinWait(8);
            if (Volatile.Read(ref *counter) >= target) return;
        }
        while (true)
        {
            long seen = SharedCounter.Read((byte*)counter);
            if (seen >= target) return;
            SharedCounter.Sleep((byte*)counter, seen, 50_000);
            long now = Stopwatch.GetTimestamp();
            if (now > nextCheck)
            {
                nextCheck = now + Stopwatch.Frequency / 5;
                CheckPeers(target, peer, ctx, collective);
            }
        }
    }

    private void CheckPeers(long target, int peer, in OpContext ctx, bool collective)
    {
        var dead = new List<int>();
        var late = new List<int>();
        for (int r = 0; r < _n; r++)
        {
            if (r == _me || (!collective && r != peer)) continue;
            if (!PeerLiveness.IsAlive(PidOf(r))) dead.Add(GetGlobalRank(r));
            else if (collective && Volatile.Read(ref *Arrival(r)) < target) late.Add(GetGlobalRank(r));
        }
        if (!collective && dead.Count == 0 && DateTime.UtcNow > ctx.Deadline) late.Add(GetGlobalRank(peer));
        if (dead.Count > 0) throw PeersGone(ctx, dead, "died (its process ended without a last heartbeat: killed or crashed)");
        ThrowIfFrozen(ctx, collective ? GlobalRanks : [GetGlobalRank(peer)]);
        if (DateTime.UtcNow > ctx.Deadline) throw TimedOut(ctx, late);
    }

    /// <summary>Sub-range k of n elements split over the ranks, aligned to 64 bytes.</summary>
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
        NativeMemory.Free(_sources);
        _segment.Dispose();
    }
}
