using System.Diagnostics;
using DeepSpeedSharp.Comm.Core;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// A set of ranks that run collectives together (torch.distributed's ProcessGroup). Every operation is executed
/// by a per-group background worker in submission order; the synchronous methods submit and wait.
/// <c>src</c>/<c>dst</c> arguments are global ranks, as in torch.distributed. Collectives are in place on the
/// given tensors; tensors may be on any device and need not be contiguous (they are staged through reused host
/// buffers when needed).
/// </summary>
public abstract partial class ProcessGroup : IDisposable
{
    private readonly int[] _globalRanks;
    private readonly Dictionary<int, int> _groupRankOf = new();
    private readonly object _submitLock = new();
    private SerialExecutor? _collectives, _sends, _recvs;
    private long _nextSeq;
    private Exception? _broken;
    private bool _disposed;
    private int _peersOffHost;
    private readonly TimeSpan _timeout;

    private protected ProcessGroup(IReadOnlyList<int> globalRanks, int globalRank, string backend, TimeSpan timeout, CommsLogger logger)
    {
        _globalRanks = globalRanks.ToArray();
        for (int i = 0; i < _globalRanks.Length; i++) _groupRankOf[_globalRanks[i]] = i;
        GlobalRank = globalRank;
        Rank = _groupRankOf.TryGetValue(globalRank, out var r) ? r : -1;
        Backend = backend;
        _timeout = timeout;
        Logger = logger;
    }

    /// <summary>This process's rank within the group (-1 when it is not a member).</summary>
    public int Rank { get; }

    /// <summary>Number of ranks in the group.</summary>
    public int Size => _globalRanks.Length;

    /// <summary>The group's members as global ranks, in group-rank order.</summary>
    public IReadOnlyList<int> GlobalRanks => _globalRanks;

    /// <summary>This process's global rank.</summary>
    public int GlobalRank { get; }

    /// <summary>The backend's name: "shm", "tcp", "mpi", "hierarchical" or "single".</summary>
    public string Backend { get; }

    /// <summary>
    /// The time after which an operation waiting for ranks that are alive (still sending heartbeats) fails with a
    /// <see cref="DistributedException"/>. A rank that froze is named sooner (see <see cref="Dist.HeartbeatTimeout"/>).
    /// </summary>
    public TimeSpan Timeout => Heartbeats?.CollectiveTimeout ?? _timeout;

    /// <summary>The group's number within the job: the world is 0, each <c>NewGroup</c> call the next (the same on every rank).</summary>
    internal int GroupId { get; set; }

    /// <summary>True when this process belongs to the group.</summary>
    public bool IsMember => Rank >= 0;

    /// <summary>The comms logger operations are recorded in.</summary>
    public CommsLogger Logger { get; }

    /// <summary>True when some members of the group run on another host than this process.</summary>
    public bool SpansHosts => _peersOffHost > 0;

    /// <summary>Records which members share this process's host (<paramref name="hosts"/> indexed by global rank), for the comms logger's cross-host bytes.</summary>
    internal void SetHosts(IReadOnlyList<string> hosts)
    {
        if (!IsMember || GlobalRank >= hosts.Count) return;
        _peersOffHost = _globalRanks.Count(r => r < hosts.Count && hosts[r] != hosts[GlobalRank]);
    }

    /// <summary>
    /// Of the <paramref name="sentBytes"/> an operation sends, the bytes that leave this host. The default fits the
    /// pairwise-exchange and direct algorithms, where every peer gets an equal share; backends with another pattern override it.
    /// </summary>
    internal virtual long CrossHostBytes(OpCode code, long messageBytes, long sentBytes) =>
        _peersOffHost == 0 || Size <= 1 ? 0 : sentBytes * _peersOffHost / (Size - 1);

    /// <summary>Group rank of a global rank; throws when it is not a member.</summary>
    public int GetGroupRank(int globalRank) => _groupRankOf.TryGetValue(globalRank, out var r) ? r
        : throw new ArgumentException($"global rank {globalRank} is not in this group (members: {string.Join(",", _globalRanks)}).", nameof(globalRank));

    /// <summary>Global rank of a group rank.</summary>
    public int GetGlobalRank(int groupRank) => groupRank >= 0 && groupRank < Size ? _globalRanks[groupRank]
        : throw new ArgumentOutOfRangeException(nameof(groupRank), $"group rank {groupRank} is outside 0..{Size - 1}.");

    // ---- backend hooks (run on the group's worker threads, on host memory) ----
    internal abstract void BarrierCore(in OpContext ctx);
    internal abstract void AllReduceCore(in OpContext ctx, HostBuffer buffer, ReduceOp op);
    internal abstract void ReduceScatterCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts, ReduceOp op);
    internal abstract void AllGatherCore(in OpContext ctx, HostBuffer output, HostBuffer input, long[] counts);
    internal abstract void BroadcastCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank);
    internal abstract void ReduceCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, ReduceOp op);
    internal abstract void AllToAllCore(in OpContext ctx, HostBuffer output, HostBuffer input);
    internal abstract void SendCore(in OpContext ctx, HostBuffer buffer, int dstGroupRank, int tag);
    internal abstract void RecvCore(in OpContext ctx, HostBuffer buffer, int srcGroupRank, int tag);

    /// <summary>Releases backend resources (sockets, shared memory) after the workers stopped.</summary>
    protected abstract void DisposeBackend();

    private enum Lane { Collective, Send, Recv }

    private SerialExecutor ExecutorFor(Lane lane)
    {
        lock (_submitLock)
        {
            return lane switch
            {
                Lane.Collective => _collectives ??= new SerialExecutor($"dss-comm-{Backend}-coll"),
                Lane.Send => _sends ??= new SerialExecutor($"dss-comm-{Backend}-send"),
                _ => _recvs ??= new SerialExecutor($"dss-comm-{Backend}-recv"),
            };
        }
    }

    private Work Submit(Lane lane, OpCode code, int dtype, long count, long extra, long messageBytes, long sentBytes,
        Action<OpContext, StagingPool> body, int peer = -1)
    {
        if (_disposed) throw new ObjectDisposedException(nameof(ProcessGroup), "the process group was destroyed.");
        if (!IsMember) throw new InvalidOperationException($"global rank {GlobalRank} is not a member of this group (members: {string.Join(",", _globalRanks)}); only members may call its operations.");
        string name = OpDescriptor.OpName(code);
        long seq;
        lock (_submitLock)
        {
            if (_broken != null)
                throw new DistributedException(name, _nextSeq, (_broken as DistributedException)?.MissingRanks ?? [],
                    $"{name} on rank {GlobalRank}: the group is unusable after an earlier failure: {_broken.Message}", _broken);
            seq = lane == Lane.Collective ? _nextSeq++ : -1;
        }
        var label = new OpLabel(name, seq, _globalRanks, peer, GroupId);
        var executor = ExecutorFor(lane);
        var work = new Work(name, seq, Heartbeats?.Activity, executor);
        executor.Post(() =>
        {
            var sw = Stopwatch.StartNew();
            long activity = Heartbeats?.Activity.Begin(label, executor) ?? -1;
            try
            {
                var ctx = new OpContext(name, seq, new OpDescriptor(code, dtype, count, extra, seq), DateTime.UtcNow + Timeout, label);
                body(ctx, executor.Staging);
                Logger.AddBytesSent(name, sentBytes, CrossHostBytes(code, messageBytes, sentBytes));
                Logger.Record(name, messageBytes, Size, sw.Elapsed, GlobalRank);
                work.Complete(null);
            }
            catch (Exception e)
            {
                if (e is DistributedException) lock (_submitLock) _broken ??= e;
                work.Complete(e);
            }
            finally
            {
                if (activity >= 0) Heartbeats!.Activity.End(activity);
            }
        });
        return work;
    }

    /// <summary>Stops the workers and releases the backend's resources.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _collectives?.Dispose();
        _sends?.Dispose();
        _recvs?.Dispose();
        DisposeBackend();
        GC.SuppressFinalize(this);
    }

    private void CheckTensor(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (!CommDType.IsSupported(t.dtype))
            throw new ArgumentException($"rank {GlobalRank}: {name} has dtype {t.dtype}; the collectives accept {CommDType.Describe}.", name);
    }

    private void CheckSameDType(Tensor a, Tensor b, string op)
    {
        if (a.dtype != b.dtype) throw new ArgumentException($"rank {GlobalRank}: {op} needs output and input of the same dtype; got {a.dtype} and {b.dtype}.");
    }

    private int CheckPeer(int globalRank, string what)
    {
        if (!_groupRankOf.TryGetValue(globalRank, out var r))
            throw new ArgumentException($"rank {GlobalRank}: {what}={globalRank} is not a member of this group (members: {string.Join(",", _globalRanks)}); pass a global rank.");
        return r;
    }

    private static long Bytes(Tensor t) => t.numel() * t.element_size();
    private long Share(long bytes) => Size <= 1 ? 0 : bytes * (Size - 1) / Size;
}
