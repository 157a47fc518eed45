namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// Which ranks can never go on, from what every rank's heartbeat says it is running. A rank that no thread of which
/// waits (it computes) can go on, and so can a rank whose status is unknown (no fresh heartbeat: that is the frozen-rank
/// check's business). A blocked rank can go on when some operation it waits for can complete: every rank that operation
/// needs either runs its counterpart now (the same collective of the same group and number, the send this receive
/// waits for, the same group under construction) or can itself go on (and may still arrive). The ranks left, after
/// this is applied until nothing changes, are deadlocked: each waits for another one that waits too, in operations
/// that cannot match.
/// </summary>
internal static class DeadlockAnalysis
{
    /// <summary>The deadlocked ranks among <paramref name="running"/> (global rank → its pending operations).</summary>
    public static HashSet<int> Stuck(IReadOnlyDictionary<int, List<PendingOp>> running)
    {
        var free = running.Where(kv => !kv.Value.Any(o => o.Blocked)).Select(kv => kv.Key).ToHashSet();
        bool CanGoOn(int r) => free.Contains(r) || !running.ContainsKey(r);
        bool Completes(int me, PendingOp op) =>
            op.Needs(me).All(m => CanGoOn(m) || running[m].Any(x => op.MatchedBy(me, x, m)));
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var (r, ops) in running)
                if (!free.Contains(r) && ops.Any(o => o.Blocked && Completes(r, o)))
                    changed |= free.Add(r);
        }
        return running.Keys.Where(r => !free.Contains(r)).ToHashSet();
    }
}
