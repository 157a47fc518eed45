namespace DeepSpeedSharp.Launcher;

/// <summary>
/// <c>--bind_cores_to_rank</c> (DeepSpeed's <c>get_numactl_cmd</c>): the cores (all of them, or
/// <c>--bind_core_list</c>) are split evenly between the node's ranks in order; each rank is started under
/// <c>taskset -c</c> (or <c>numactl -C</c> when taskset is missing) and gets <c>OMP_NUM_THREADS</c> = its core count.
/// </summary>
public static class CoreBinding
{
    /// <summary>The highest core number a list may name.</summary>
    public const int MaxCore = 65535;

    /// <summary>
    /// The cores <paramref name="list"/> names on this host (all of them without a list), checked against the host's
    /// <paramref name="hostCores"/> logical cores before any rank starts: a core the host does not have would make
    /// taskset fail and OMP_NUM_THREADS absurd.
    /// </summary>
    public static IReadOnlyList<int> HostCores(string? list, int hostCores)
    {
        if (list == null) return Enumerable.Range(0, hostCores).ToList();
        var cores = ParseCoreList(list);
        var absent = cores.Where(c => c >= hostCores).ToList();
        if (absent.Count > 0)
            throw new ArgumentException($"--bind_core_list '{list}' names core(s) {Ranges(absent)}, but this host ({Environment.MachineName}) has cores 0-{hostCores - 1}.");
        return cores;
    }

    private static string Ranges(IReadOnlyList<int> cores) =>
        cores.Count == 1 ? $"{cores[0]}" : cores.Count == cores[^1] - cores[0] + 1 ? $"{cores[0]}-{cores[^1]}" : string.Join(",", cores.Take(8)) + (cores.Count > 8 ? ",…" : "");

    /// <summary>Parses <c>1,3-5,7</c> into [1, 3, 4, 5, 7].</summary>
    public static IReadOnlyList<int> ParseCoreList(string list)
    {
        var cores = new List<int>();
        foreach (var part in list.Split(',', StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-');
            if (range.Length is 1 or 2 && int.TryParse(range[0], out int lo) && lo >= 0 && lo <= MaxCore)
            {
                int hi = lo;
                if (range.Length == 1 || (int.TryParse(range[1], out hi) && hi >= lo && hi <= MaxCore))
                {
                    for (int c = lo; c <= hi; c++) cores.Add(c);
                    continue;
                }
            }
            throw new FormatException($"--bind_core_list '{list}': '{part}' is not a core number or a range LOW-HIGH (cores 0-{MaxCore}).");
        }
        return cores.Distinct().ToList();
    }

    /// <summary>The cores of local rank <paramref name="localRank"/> out of <paramref name="localSize"/>.</summary>
    public static IReadOnlyList<int> CoresFor(IReadOnlyList<int> allCores, int localSize, int localRank)
    {
        int perRank = allCores.Count / localSize;
        if (perRank < 1)
            throw new ArgumentException($"--bind_cores_to_rank: {localSize} ranks on this node but only {allCores.Count} core(s) to bind; at least one core is needed per rank.");
        return allCores.Skip(perRank * localRank).Take(perRank).ToList();
    }

    /// <summary>The command prefix that pins a process to <paramref name="cores"/>.</summary>
    public static IReadOnlyList<string> CommandPrefix(IReadOnlyList<int> cores)
    {
        var list = string.Join(",", cores);
        if (ProgramResolver.FindOnPath("taskset") is { } taskset) return [taskset, "-c", list];
        if (ProgramResolver.FindOnPath("numactl") is { } numactl) return [numactl, "-C", list];
        throw new InvalidOperationException("--bind_cores_to_rank needs `taskset` (util-linux) or `numactl` on PATH; neither was found.");
    }
}
