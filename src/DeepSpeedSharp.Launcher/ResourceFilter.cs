namespace DeepSpeedSharp.Launcher;

/// <summary>
/// DeepSpeed's <c>--include</c>/<c>--exclude</c> resource strings: <c>NODE_SPEC[@NODE_SPEC...]</c> with
/// <c>NODE_SPEC = NAME[:SLOT[,SLOT...]]</c>. Without <c>:SLOT</c> a spec means every slot of that host.
/// <c>-i "worker-0@worker-1:0,2"</c> uses all of worker-0 and slots 0 and 2 of worker-1;
/// <c>-e "worker-1:0"</c> uses everything except slot 0 of worker-1.
/// </summary>
public static class ResourceFilter
{
    /// <summary>Parses a resource string into host → sorted distinct slots (empty = whole host).</summary>
    public static OrderedDictionary<string, List<int>> ParseNodeConfigList(string spec, string flag = "--include")
    {
        var result = new OrderedDictionary<string, List<int>>(StringComparer.Ordinal);
        foreach (var node in spec.Split('@'))
        {
            var parts = node.Split(':');
            if (parts.Length > 2 || parts[0].Length == 0)
                throw new FormatException($"{flag} '{spec}': '{node}' is not NAME or NAME:SLOT[,SLOT...].");
            var slots = new List<int>();
            if (parts.Length == 2)
            {
                foreach (var s in parts[1].Split(','))
                {
                    if (!int.TryParse(s, out int slot) || slot < 0)
                        throw new FormatException($"{flag} '{spec}': slot '{s}' of host '{parts[0]}' is not a non-negative integer.");
                    slots.Add(slot);
                }
            }
            if (!result.TryGetValue(parts[0], out var existing)) result.Add(parts[0], existing = []);
            existing.AddRange(slots);
        }
        foreach (var key in result.Keys.ToList()) result[key] = result[key].Distinct().Order().ToList();
        return result;
    }

    /// <summary>
    /// Applies <paramref name="include"/> or <paramref name="exclude"/> (at most one non-empty) to a pool of
    /// host → slot count and returns the active hosts with their slots in the pool's order; hosts left
    /// without slots are dropped. When <paramref name="slotsAreLimits"/> is false (the implicit local host of
    /// a CPU-only run), included slots beyond the pool's count are accepted.
    /// </summary>
    public static WorldInfo Apply(OrderedDictionary<string, int> pool, string include, string exclude, bool slotsAreLimits = true)
    {
        if (include.Length > 0 && exclude.Length > 0)
            throw new ArgumentException("--include and --exclude are mutually exclusive (include_str and exclude_str are mutually exclusive).");
        var all = new OrderedDictionary<string, List<int>>(StringComparer.Ordinal);
        foreach (var (host, count) in pool) all.Add(host, Enumerable.Range(0, count).ToList());
        if (include.Length == 0 && exclude.Length == 0) return ToWorld(all, all);

        bool including = include.Length > 0;
        string flag = including ? "--include" : "--exclude";
        var filtered = new OrderedDictionary<string, List<int>>(StringComparer.Ordinal);
        if (!including) foreach (var (h, s) in all) filtered.Add(h, [.. s]);

        foreach (var (host, slots) in ParseNodeConfigList(including ? include : exclude, flag))
        {
            if (!all.TryGetValue(host, out var available))
                throw new ArgumentException($"{flag}: Hostname '{host}' not found in hostfile (hosts: {string.Join(", ", all.Keys)}).");
            foreach (var slot in slots)
            {
                if (!available.Contains(slot) && (slotsAreLimits || !including))
                    throw new ArgumentException($"{flag}: No slot '{slot}' specified on host '{host}' (it has slots 0..{available.Count - 1}).");
            }
            if (including) filtered[host] = slots.Count > 0 ? slots : [.. available];
            else if (slots.Count > 0) filtered[host].RemoveAll(slots.Contains);
            else filtered[host].Clear();
        }
        return ToWorld(all, filtered);
    }

    private static WorldInfo ToWorld(OrderedDictionary<string, List<int>> order, OrderedDictionary<string, List<int>> chosen) =>
        new(order.Keys.Where(h => chosen.TryGetValue(h, out var s) && s.Count > 0)
            .Select(h => new KeyValuePair<string, IReadOnlyList<int>>(h, chosen[h].Distinct().ToList())));
}
