using System.Diagnostics;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// Ends a deadlock in seconds instead of at the collective timeout. While a rank waits in communication (a second or
/// more), it looks at every rank's heartbeat about twice a second; when <see cref="DeadlockAnalysis"/> finds this rank
/// among ranks that can never go on, on two looks at least <see cref="Confirm"/> apart, with each of those ranks still
/// blocked in the very same operations and still beating (alive, not frozen), the operation fails naming every such
/// rank's pending operation and where it was called. Two looks, because heartbeats are up to a beat old: a rank that
/// only passed through an operation is not blamed.
/// </summary>
internal sealed class DeadlockWatch
{
    /// <summary>How long a rank waits before it starts looking.</summary>
    public static readonly TimeSpan LookAfter = TimeSpan.FromSeconds(1);

    /// <summary>How far apart the two looks that must agree are.</summary>
    public static readonly TimeSpan Confirm = TimeSpan.FromSeconds(0.9);

    private static readonly TimeSpan LookEvery = TimeSpan.FromSeconds(0.4);
    private readonly object _lock = new();
    private readonly int _rank;
    private long _lastLook;
    private Look? _previous;

    private sealed record Look(long At, Dictionary<int, RankBeat> Beats, HashSet<int> Stuck);

    public DeadlockWatch(int rank) => _rank = rank;

    /// <summary>
    /// Called while this rank has waited <paramref name="waited"/> in <paramref name="what"/>; throws a
    /// <see cref="DistributedException"/> once a deadlock is confirmed. <paramref name="statuses"/> fetches every rank's
    /// last heartbeat (null when the store does not answer); <paramref name="fresh"/> is how old a beat may be to count.
    /// </summary>
    public void Check(OpLabel what, long errorSeq, TimeSpan waited, Func<Dictionary<int, RankBeat>?> statuses, TimeSpan fresh)
    {
        if (waited < LookAfter) return;
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (Stopwatch.GetElapsedTime(_lastLook, now) < LookEvery) return;
            _lastLook = now;
        }
        var beats = statuses();
        if (beats == null) return;
        now = Stopwatch.GetTimestamp();
        var running = beats.Where(kv => kv.Value.AgeMs <= fresh.TotalMilliseconds && !kv.Value.Status.StartsWith(PeerWatch.ExitedPrefix, StringComparison.Ordinal))
                           .ToDictionary(kv => kv.Key, kv => kv.Value.Pending);
        var stuck = DeadlockAnalysis.Stuck(running);
        Look? previous;
        lock (_lock)
        {
            previous = _previous;
            _previous = stuck.Contains(_rank) ? new Look(now, beats, stuck) : null;
            if (_previous == null || previous == null) return;
            if (Stopwatch.GetElapsedTime(previous.At, now) < Confirm) { _previous = previous; return; }
        }
        foreach (int r in stuck)
            if (!previous.Stuck.Contains(r) || !SameBlockedOps(previous.Beats[r], beats[r])
                || !BeatSince(previous.Beats[r], previous.At, beats[r], now))
                return; // something moved: look again
        throw new DistributedException(what.Name, errorSeq, stuck.Where(r => r != _rank).Order().ToList(), Message(what, stuck, beats));
    }

    private string Message(OpLabel what, HashSet<int> stuck, Dictionary<int, RankBeat> beats)
    {
        var lines = stuck.Order().Select(r => $"rank {r} waits in " + string.Join(" and in ", beats[r].Pending.Where(o => o.Blocked).Select(o => o.Describe())));
        return $"{what} on rank {_rank} failed: deadlock: rank(s) {string.Join(",", stuck.Order())} are all blocked in communication, each waiting " +
               $"for another of them in operations that cannot match: {string.Join("; ", lines)}. Nothing else can unblock them: look for a collective or " +
               "send/recv that the ranks call in a different order, on some ranks only, or on different groups (every rank must create groups in the same order).";
    }

    private static bool SameBlockedOps(RankBeat a, RankBeat b) =>
        a.Pending.Where(o => o.Blocked).Select(o => o.Token).Order().SequenceEqual(b.Pending.Where(o => o.Blocked).Select(o => o.Token).Order());

    // The rank beat again between the two looks: it is alive (a frozen rank is the frozen-rank check's to name).
    private static bool BeatSince(RankBeat before, long beforeAt, RankBeat after, long afterAt) =>
        Stopwatch.GetElapsedTime(beforeAt, afterAt).TotalMilliseconds + before.AgeMs - after.AgeMs > 1;
}
