using System.Diagnostics;
using DeepSpeedSharp.Comm.Store;

namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// Tells a frozen rank from a slow one. Every rank beats to the rendezvous store once a second over a connection of
/// its own, from a thread of its own, carrying what its communication is doing (<see cref="CommActivity"/>); each beat's
/// answer gives the age of every rank's last beat. A rank that is computing, however long, keeps beating: it is slow,
/// and others wait for it up to <see cref="CollectiveTimeout"/>. A rank that is stopped (SIGSTOP, a debugger) or whose
/// host is gone stops beating: after <see cref="FrozenAfter"/> the ranks waiting for it name it and fail. When the
/// store itself stops answering, its host, rank 0, is the frozen one.
/// A rank judges others only on a fresh answer, so a rank that was itself stopped and resumed does not blame others.
/// </summary>
internal sealed class PeerWatch : IDisposable
{
    /// <summary>How long a rank may go without a heartbeat before it counts as frozen, unless configured.</summary>
    public static readonly TimeSpan DefaultFrozenAfter = TimeSpan.FromSeconds(30);

    private readonly TcpStoreClient _client;
    private readonly int _rank;
    private readonly Thread _thread;
    private readonly AutoResetEvent _wake = new(false);
    private readonly ManualResetEventSlim _statusReady = new(false);
    private readonly long _started = Stopwatch.GetTimestamp();
    private volatile bool _stopped, _statusWanted;
    private volatile Dictionary<int, long> _ages = new();
    private volatile Dictionary<int, RankBeat>? _statuses;
    private readonly DeadlockWatch _deadlocks;
    private long _agesAt, _beatSentAt, _storeSilentSince;
    private volatile bool _awaitingReply;
    private long _collectiveTicks, _frozenTicks;

    /// <summary>How a rank's last heartbeat starts when its process ended normally or on an error it reported: "exited with code N …".</summary>
    public const string ExitedPrefix = "exited with code ";

    public PeerWatch(TcpStoreClient ownConnection, int rank, TimeSpan collectiveTimeout, TimeSpan frozenAfter)
    {
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        _client = ownConnection;
        _rank = rank;
        CollectiveTimeout = collectiveTimeout;
        FrozenAfter = frozenAfter;
        _deadlocks = new DeadlockWatch(rank);
        BeatOnce(); // the first beat before any group exists: a member that never beat is judged from this rank's start
        _thread = new Thread(Loop) { IsBackground = true, Name = "dss-heartbeat", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    /// <summary>What this rank's communication is doing; the heartbeat carries it.</summary>
    public CommActivity Activity { get; } = new();

    /// <summary>How long an operation waits for a rank that is alive (still beating) before it fails.</summary>
    public TimeSpan CollectiveTimeout
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _collectiveTicks));
        set => Interlocked.Exchange(ref _collectiveTicks, Positive(value, "collective timeout").Ticks);
    }

    /// <summary>How long a rank may go without a heartbeat before waiting ranks name it frozen and fail.</summary>
    public TimeSpan FrozenAfter
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _frozenTicks));
        set => Interlocked.Exchange(ref _frozenTicks, Positive(value, "heartbeat timeout").Ticks);
    }

    private TimeSpan Interval => TimeSpan.FromMilliseconds(Math.Clamp(FrozenAfter.TotalMilliseconds / 5, 100, 1000));

    /// <summary>
    /// The ranks among <paramref name="ranks"/> (global) that sent no heartbeat for <see cref="FrozenAfter"/>, with how
    /// long they have been silent. Rank 0 is among them when the store it hosts has not answered for that long.
    /// </summary>
    public List<(int Rank, TimeSpan Silent)> Frozen(IEnumerable<int> ranks)
    {
        var frozen = new List<(int, TimeSpan)>();
        long now = Stopwatch.GetTimestamp();
        var limit = FrozenAfter;
        var storeSilence = StoreSilence(now);
        var agesAt = Interlocked.Read(ref _agesAt);
        bool fresh = Stopwatch.GetElapsedTime(agesAt, now) <= 3 * Interval;
        var ages = _ages;
        foreach (int r in ranks)
        {
            if (r == _rank) continue;
            if (r == 0 && storeSilence > limit) { frozen.Add((0, storeSilence)); continue; }
            if (!fresh) continue;
            var silent = ages.TryGetValue(r, out var ms)
                ? TimeSpan.FromMilliseconds(ms) + Stopwatch.GetElapsedTime(agesAt, now)
                : Stopwatch.GetElapsedTime(_started, now);
            if (silent > limit) frozen.Add((r, silent));
        }
        return frozen;
    }

    /// <summary>
    /// Called while this rank has waited <paramref name="waited"/> in <paramref name="what"/>: throws a
    /// <see cref="DistributedException"/> naming every rank's pending operation once the ranks it waits for are
    /// confirmed deadlocked (<see cref="DeadlockWatch"/>).
    /// </summary>
    public void ThrowIfDeadlocked(Core.OpLabel what, long errorSeq, TimeSpan waited)
    {
        if (!StoreAnswering) return;
        _deadlocks.Check(what, errorSeq, waited, () => Statuses(TimeSpan.FromSeconds(1)),
            TimeSpan.FromMilliseconds(Math.Max(2500, 3 * Interval.TotalMilliseconds)));
    }

    /// <summary>False while the store leaves a beat unanswered for longer than two beat intervals.</summary>
    public bool StoreAnswering => !_awaitingReply || Stopwatch.GetElapsedTime(Interlocked.Read(ref _beatSentAt)) < 2 * Interval;

    /// <summary>Every rank's last heartbeat (age, status line, pending operations) from the store, or null when it does not answer within <paramref name="wait"/>.</summary>
    public Dictionary<int, RankBeat>? Statuses(TimeSpan wait)
    {
        _statusReady.Reset();
        _statusWanted = true;
        _wake.Set();
        return _statusReady.Wait(wait) ? _statuses : null;
    }

    /// <summary>How long the store has left this rank's current beat unanswered (zero when it is not waiting).</summary>
    private TimeSpan StoreSilence(long now)
    {
        if (!_awaitingReply) { Interlocked.Exchange(ref _storeSilentSince, 0); return TimeSpan.Zero; }
        var silence = Stopwatch.GetElapsedTime(Interlocked.Read(ref _beatSentAt), now);
        if (silence <= FrozenAfter) return TimeSpan.Zero;
        // Confirm on a later look: if this process was itself stopped, its heartbeat thread reads the waiting reply
        // within moments of resuming, and the store is not to blame.
        long since = Interlocked.CompareExchange(ref _storeSilentSince, now, 0);
        return since != 0 && Stopwatch.GetElapsedTime(since, now) > TimeSpan.FromSeconds(1) ? silence : TimeSpan.Zero;
    }

    private void BeatOnce()
    {
        Interlocked.Exchange(ref _beatSentAt, Stopwatch.GetTimestamp());
        _awaitingReply = true;
        var ages = _client.Beat(_rank, RankBeat.Text(Activity.Describe(), Activity.Pending()));
        _awaitingReply = false;
        _ages = ages;
        Interlocked.Exchange(ref _agesAt, Stopwatch.GetTimestamp());
        if (_statusWanted)
        {
            _statusWanted = false;
            _statuses = _client.Statuses().ToDictionary(kv => kv.Key, kv => RankBeat.Of(kv.Value.AgeMs, kv.Value.Status));
            _statusReady.Set();
        }
    }

    private void Loop()
    {
        while (!_stopped)
        {
            _wake.WaitOne(Interval);
            if (_stopped) return;
            try { BeatOnce(); }
            catch (Exception) when (_stopped) { return; }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or InvalidDataException)
            {
                // The store is gone (rank 0 ended or died): dead peers are noticed by the backends themselves.
                _awaitingReply = false;
                return;
            }
        }
    }

    /// <summary>
    /// The last beat, sent as the process exits (not when it is killed): "exited with code 0 after its last operation,
    /// all_reduce #41 over ranks 0,1", so a rank still waiting for it can tell a finished peer — the ranks ran different
    /// numbers of operations — from one that died.
    /// </summary>
    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (_stopped || !StoreAnswering) return;
        _stopped = true;
        var last = Activity.LastOperation();
        string status = $"{ExitedPrefix}{Environment.ExitCode}" + (last == null ? " before any communication" : $" after its last operation, {last}");
        // Bounded: a store that stopped answering (its host frozen) must not hold the exit.
        var beat = Task.Run(() => _client.Beat(_rank, status));
        try { beat.Wait(TimeSpan.FromSeconds(1)); }
        catch (AggregateException) { } // the store may be gone already: the peers then learn only that the process ended
    }

    private static TimeSpan Positive(TimeSpan t, string what) =>
        t > TimeSpan.Zero ? t : throw new ArgumentOutOfRangeException(nameof(t), $"the {what} must be positive; got {t}.");

    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _stopped = true;
        _wake.Set();
        _client.Dispose();
        _thread.Join(TimeSpan.FromSeconds(2));
    }
}
