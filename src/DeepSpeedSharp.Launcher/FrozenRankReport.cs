using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// When a rank failed because another froze (it stopped sending heartbeats: <see cref="DistributedException.FrozenRanks"/>),
/// the launcher names the frozen rank as the cause, with what it can see of it on this node (stopped, or gone), instead
/// of blaming the rank that noticed.
/// </summary>
internal static class FrozenRankReport
{
    /// <summary>The frozen ranks announced in any rank's output (the "[dss] frozen ranks: …" line).</summary>
    public static SortedSet<int> Announced(IEnumerable<RankProcess> ranks)
    {
        var frozen = new SortedSet<int>();
        foreach (var r in ranks)
            foreach (var line in r.Tail())
            {
                int at = line.IndexOf(UnhandledErrors.FrozenMarker, StringComparison.Ordinal);
                if (at < 0) continue;
                foreach (var part in line[(at + UnhandledErrors.FrozenMarker.Length)..].Split(','))
                    if (int.TryParse(part.Trim(), out var f)) frozen.Add(f);
            }
        return frozen;
    }

    /// <summary>
    /// One line per frozen rank: "rank F (pid P, node N) froze: …" with its process state as seen just before the
    /// launcher stopped the ranks (<paramref name="statesBeforeStop"/>: rank → /proc state letter, null when gone).
    /// </summary>
    public static IEnumerable<string> Lines(string tag, IEnumerable<int> frozen, IReadOnlyList<RankProcess> ranks,
        IReadOnlyDictionary<int, char?> statesBeforeStop, int nodeRank)
    {
        foreach (int f in frozen)
        {
            var local = ranks.FirstOrDefault(r => r.Rank == f);
            if (local == null)
            {
                yield return $"{tag} rank {f} (on another node) froze: it sent no heartbeat (its process is stopped or its host is gone); it is the cause.";
                continue;
            }
            var state = statesBeforeStop.TryGetValue(f, out var s) ? s : null;
            string seen = state switch
            {
                'T' => "its process was stopped (SIGSTOP or a job-control stop)",
                't' => "its process was stopped by a debugger or tracer",
                null => "its process was gone",
                'D' => "its process was stuck in uninterruptible I/O",
                _ => $"its process was in state '{state}'",
            };
            yield return $"{tag} rank {f} (pid {local.Pid}, node {nodeRank}) froze: it sent no heartbeat; {seen}. It is the cause; the rank below noticed it.";
        }
    }
}
