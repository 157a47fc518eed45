using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// What this rank's communication is doing: the operations in flight (name, sequence number, the group's ranks, since
/// when) and the last one that finished. The heartbeat carries it as text, so when a collective times out every rank
/// can be described: inside which operation it waits, or that it is computing and since when.
/// </summary>
internal sealed class CommActivity
{
    private readonly object _lock = new();
    private readonly Dictionary<long, Entry> _inFlight = new();
    private Entry? _last;
    private long _lastEnded;
    private long _nextId;

    // The group's ranks are kept as given and formatted only when a heartbeat describes them (once a second), not per operation.
    private sealed record Entry(OpLabel Label, long Started);

    /// <summary>Marks an operation as started; returns the token to pass to <see cref="End"/>.</summary>
    public long Begin(OpLabel label)
    {
        var e = new Entry(label, Stopwatch.GetTimestamp());
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

    /// <summary>One line: "in all_reduce #17 over ranks 0-3 for 2.1 s" or "computing; last op … ended 4.0 s ago".</summary>
    public string Describe()
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (_inFlight.Count > 0)
                return "in " + string.Join(", ", _inFlight.Values.OrderBy(e => e.Started).Select(e =>
                    $"{Op(e)} for {Seconds(Stopwatch.GetElapsedTime(e.Started, now))}"));
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

    private static string Op(Entry e) => e.Label.ToString();

    /// <summary>"2.1 s": how the liveness messages write durations.</summary>
    internal static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + " s";
}
