using DeepSpeedSharp.Comm.Core;
using DeepSpeedSharp.Comm.Liveness;

namespace DeepSpeedSharp.Comm;

public abstract partial class ProcessGroup
{
    /// <summary>The heartbeat watch of the job (null for a world of one and under MPI).</summary>
    internal PeerWatch? Heartbeats { get; set; }

    /// <summary>
    /// Called by a backend while it waits: throws when a rank it waits for (global ranks) sent no heartbeat for the
    /// watch's <see cref="PeerWatch.FrozenAfter"/>, naming the rank as frozen, or when this rank is deadlocked with
    /// others (<see cref="PeerWatch.ThrowIfDeadlocked"/>).
    /// </summary>
    private protected void ThrowIfFrozen(in OpContext ctx, IEnumerable<int> waitedOn)
    {
        if (Heartbeats is not { } watch) return;
        watch.ThrowIfDeadlocked(ctx.Label, ctx.ErrorSeq, Timeout - (ctx.Deadline - DateTime.UtcNow));
        var frozen = watch.Frozen(waitedOn);
        if (frozen.Count == 0) return;
        var statuses = watch.StoreAnswering ? watch.Statuses(TimeSpan.FromSeconds(2)) : null;
        var what = string.Join("; ", frozen.Select(f =>
            $"rank {f.Rank} sent no heartbeat for {Seconds(f.Silent)}" +
            (f.Rank == 0 && !watch.StoreAnswering ? " (the rendezvous store it hosts does not answer)" : "") +
            (statuses != null && statuses.TryGetValue(f.Rank, out var s) ? $"; its last heartbeat, {Seconds(TimeSpan.FromMilliseconds(s.AgeMs))} ago, said: {s.Status}" : "")));
        throw new DistributedException(ctx.Name, ctx.ErrorSeq, frozen.Select(f => f.Rank).ToList(),
            $"{ctx.Label} on rank {GlobalRank} failed: rank(s) {string.Join(",", frozen.Select(f => f.Rank))} " +
            $"froze (stopped, e.g. by SIGSTOP or a debugger, or its host is gone): {what}.")
        { FrozenRanks = frozen.Select(f => f.Rank).ToList() };
    }

    /// <summary>
    /// The error of an operation that waited <see cref="Timeout"/> for ranks that are alive but late: names the ranks and
    /// says what every member of the group was doing (from the heartbeats).
    /// </summary>
    private protected DistributedException TimedOut(in OpContext ctx, IReadOnlyList<int> late)
    {
        var message = $"{ctx.Label} on rank {GlobalRank} timed out after {Timeout} waiting for rank(s) {string.Join(",", late)}";
        var statuses = Heartbeats?.Statuses(TimeSpan.FromSeconds(3));
        if (statuses != null)
        {
            var lines = _globalRanks.Select(r => statuses.TryGetValue(r, out var s)
                ? $"rank {r}: {s.Status} (as of its heartbeat {Seconds(TimeSpan.FromMilliseconds(s.AgeMs))} ago)"
                : $"rank {r}: no heartbeat yet");
            message += $". Where each rank of the group is: {string.Join("; ", lines)}";
        }
        message += ". Ranks that keep beating are slow, not frozen: raise the collective timeout (config distributed.timeout_seconds, or DEEPSPEED_TIMEOUT in minutes) if that is expected.";
        return new DistributedException(ctx.Name, ctx.ErrorSeq, late, message);
    }

    /// <summary>
    /// The failure of an operation whose peers <paramref name="gone"/> (global ranks) ended: each rank's last heartbeat
    /// says whether it exited (with which code, after which operation) or died without a word (killed, crashed), and a
    /// peer that finished normally while this rank waits means the ranks ran different numbers of operations.
    /// </summary>
    private protected DistributedException PeersGone(in OpContext ctx, IReadOnlyList<int> gone, string unannounced)
    {
        var statuses = Heartbeats is { StoreAnswering: true } w ? w.Statuses(TimeSpan.FromSeconds(1)) : null;
        var said = gone.ToDictionary(r => r, r => statuses != null && statuses.TryGetValue(r, out var s)
            && s.Status.StartsWith(PeerWatch.ExitedPrefix, StringComparison.Ordinal) ? s.Status : "");
        var parts = gone.Select(r => said[r] is { Length: > 0 } last ? $"rank {r} {last}"
            : statuses == null ? $"rank {r} is gone (its process ended; how is unknown: the rendezvous store, which rank 0 hosts, does not answer)"
            : $"rank {r} {unannounced}").ToList();
        var message = $"{ctx.Label} on rank {GlobalRank} failed: {string.Join("; ", parts)}";
        if (said.Values.Any(s => s.StartsWith(PeerWatch.ExitedPrefix + "0 ", StringComparison.Ordinal)))
            message += ". A rank that finished while another still waits for it means the ranks ran different numbers of operations " +
                       "(a collective or send/recv called on some ranks only, or loops of different lengths)";
        return new DistributedException(ctx.Name, ctx.ErrorSeq, gone, message + ".");
    }

    private static string Seconds(TimeSpan t) => CommActivity.Seconds(t);
}
