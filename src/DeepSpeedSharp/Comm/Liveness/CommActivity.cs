using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// What this rank's communication is doing: the operations in flight (name, sequence number, the group's ranks, since
/// when), the threads blocked waiting for one (and where they called it), a group under construction, and the last
/// operation that finished. The heartbeat carries it twice: as a line for people, so when a collective times out every
/// rank can be described (inside which operation it waits, or computing since when), and as <see cref="PendingOp"/>s
/// for the deadlock check.
/// </summary>
internal sealed class CommActivity
{
    private readonly object _lock = new();
    private readonly Dictionary<long, Entry> _inFlight = new();
    private readonly Dictionary<long, Waiter> _waiters = new();
    private Entry? _last;
    private long _lastEnded;
    private long _nextId;

    // The group's ranks are kept as given and formatted only when a heartbeat describes them (once a second), not per operation.
    // Lane: the executor the operation runs on (a waited operation queued behind another waits for that one).
    private sealed record Entry(OpLabel Label, long Started, object? Lane);

    // A thread blocked on an operation of Lane (or, with Creation set, building a group), called at CallSite.
    private sealed record Waiter(object? Lane, OpLabel? Creation, string? CallSite, long Since);

    /// <summary>Marks an operation as started on <paramref name="lane"/>; returns the token to pass to <see cref="End"/>.</summary>
    public long Begin(OpLabel label, object? lane = null)
    {
        var e = new Entry(label, Stopwatch.GetTimestamp(), lane);
        lock (_lock)
        {
            long id = _nextId++;
            _inFlight[id] = e;
            return id;
        }
    }

    /// <summary>Marks the operation of <paramref name="token"/> as finished.</summary>
    public void End(long token)
    {
        lock (_lock)
        {
            if (!_inFlight.Remove(token, out var e)) return;
            _last = e;
            _lastEnded = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Records that the calling thread is blocked until an operation of <paramref name="lane"/> completes; returns the token for <see cref="EndWait"/>.</summary>
    public long BeginWait(object lane, string? callSite) => AddWaiter(new Waiter(lane, null, callSite, Stopwatch.GetTimestamp()));

    /// <summary>Records that the calling thread builds the group <paramref name="creation"/> (it waits for the members); returns the token for <see cref="EndWait"/>.</summary>
    public long BeginCreation(OpLabel creation, string? callSite) => AddWaiter(new Waiter(null, creation, callSite, Stopwatch.GetTimestamp()));

    /// <summary>The thread of <paramref name="token"/> is no longer blocked.</summary>
    public void EndWait(long token)
    {
        lock (_lock) _waiters.Remove(token);
    }

    private long AddWaiter(Waiter w)
    {
        lock (_lock)
        {
            long id = _nextId++;
            _waiters[id] = w;
            return id;
        }
    }

    /// <summary>
    /// The operations in flight and the groups under construction, each marked blocked when a thread waits for it —
    /// directly, or for an operation queued behind it on the same lane.
    /// </summary>
    public List<PendingOp> Pending()
    {
        lock (_lock)
        {
            var ops = new List<PendingOp>();
            foreach (var (id, e) in _inFlight)
            {
                var waiter = e.Lane == null ? null : _waiters.Values.FirstOrDefault(w => ReferenceEquals(w.Lane, e.Lane));
                ops.Add(new PendingOp(id, e.Label, waiter != null, waiter?.CallSite));
            }
            foreach (var (id, w) in _waiters)
                if (w.Creation is { } c) ops.Add(new PendingOp(id, c, true, w.CallSite));
            return ops;
        }
    }

    /// <summary>One line: "in all_reduce #17 over ranks 0-3 for 2.1 s" or "computing; last op … ended 4.0 s ago".</summary>
    public string Describe()
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            var creating = _waiters.Values.Where(w => w.Creation != null).ToList();
            if (_inFlight.Count > 0 || creating.Count > 0)
                return "in " + string.Join(", ", _inFlight.Values.OrderBy(e => e.Started).Select(e =>
                        $"{Op(e)} for {Seconds(Stopwatch.GetElapsedTime(e.Started, now))}{CalledAt(e.Lane)}")
                    .Concat(creating.Select(w =>
                        $"{w.Creation} (creating the group, waiting for its members) for {Seconds(Stopwatch.GetElapsedTime(w.Since, now))}{(w.CallSite != null ? $", called at {w.CallSite}" : "")}")));
            return _last == null
                ? "computing (no communication yet)"
                : $"computing: its last operation, {Op(_last)}, ended {Seconds(Stopwatch.GetElapsedTime(_lastEnded, now))} ago";
        }
    }

    /// <summary>The last operation that finished ("all_reduce #41 over ranks 0,1"), or null before any.</summary>
    public string? LastOperation()
    {
        lock (_lock) return _last?.Label.ToString();
    }

    // Under _lock: ", called at X" when a thread waits on the lane and its call site is known.
    private string CalledAt(object? lane) =>
        lane != null && _waiters.Values.FirstOrDefault(w => ReferenceEquals(w.Lane, lane)) is { CallSite: { } site } ? $", called at {site}" : "";

    private static string Op(Entry e) => e.Label.ToString();

    /// <summary>"2.1 s": how the liveness messages write durations.</summary>
    internal static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + " s";
}
