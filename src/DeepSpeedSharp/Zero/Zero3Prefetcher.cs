using DeepSpeedSharp.Utils;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Decides when ZeRO-3 parameters are gathered and released. The first micro-step records the order in which units
/// are fetched (forward, then the recomputations of backward); later micro-steps follow that trace to
/// <list type="bullet">
/// <item>prefetch the next units' parameters asynchronously, up to <c>stage3_prefetch_bucket_size</c> elements in
/// flight and <c>stage3_max_live_parameters</c> elements gathered in all;</item>
/// <item>keep a unit's parameters gathered when the trace uses them again within <c>stage3_max_reuse_distance</c>
/// elements of other fetches;</item>
/// <item>run units with autograd's own graph (<see cref="KeepsGraph"/>) when the limits keep every parameter gathered
/// from its forward to its backward anyway and one reduce bucket holds every gradient.</item>
/// </list>
/// If a micro-step fetches units in a different order (data-dependent control flow), the trace is dropped and
/// everything is gathered on demand.
/// </summary>
internal sealed class Zero3Prefetcher
{
    private readonly long prefetchBucket;
    private readonly long maxLive;
    private readonly long maxReuseDistance;
    private readonly bool oneGradientBucket;
    private List<int>? trace;
    private readonly List<(int Unit, bool Forward)> recording = new();
    private bool traceBroken;
    private bool graphMode;
    private bool passUsedGraph;
    private int position;

    /// <param name="prefetchBucket"><c>stage3_prefetch_bucket_size</c> (elements in flight).</param>
    /// <param name="maxLive"><c>stage3_max_live_parameters</c> (elements gathered at once).</param>
    /// <param name="maxReuseDistance"><c>stage3_max_reuse_distance</c> (elements fetched before a reuse).</param>
    /// <param name="oneGradientBucket">True when one reduce bucket holds every gradient (a prerequisite of <see cref="KeepsGraph"/>).</param>
    public Zero3Prefetcher(long prefetchBucket, long maxLive, long maxReuseDistance, bool oneGradientBucket)
    {
        this.prefetchBucket = prefetchBucket;
        this.maxLive = maxLive;
        this.maxReuseDistance = maxReuseDistance;
        this.oneGradientBucket = oneGradientBucket;
    }

    /// <summary>Peak bytes of non-persistent parameters gathered (or being gathered) at once.</summary>
    public long PeakLiveBytes { get; private set; }

    /// <summary>Resets <see cref="PeakLiveBytes"/>.</summary>
    public void ResetPeak() => PeakLiveBytes = 0;

    /// <summary>
    /// True when units run with autograd's own graph instead of a ZeRO-3 backward node: the trace is known and the
    /// limits keep every parameter gathered from its forward until the end of backward (stage3_max_live_parameters
    /// covers them all and stage3_max_reuse_distance the whole trace), so releasing in between never happens, and one
    /// reduce bucket holds all gradients, so they are reduce-scattered together after backward. Backward then needs
    /// neither a re-gather nor a recomputation; the gradients are the same to the bit.
    /// </summary>
    public bool KeepsGraph => graphMode && !traceBroken;

    public void Fetch(Zero3Unit unit, IReadOnlyList<Zero3Unit> units, Tensor master, bool forward)
    {
        if (trace is null) recording.Add((unit.Index, forward));
        else if (!traceBroken && (position >= trace.Count || trace[position] != unit.Index))
        {
            traceBroken = true;
            Log.Warn($"ZeRO-3: unit '{unit.Name}' was fetched out of the recorded order; prefetching is off from now on");
        }
        foreach (var p in unit.Parameters) p.BeginGather(master, training: true);
        foreach (var p in unit.Parameters) p.CompleteGather();
        if (trace is not null && !traceBroken) Prefetch(units, master);
        if (KeepsGraph && is_grad_enabled()) passUsedGraph = true;
        TrackPeak(units);
        position++;
    }

    public void Done(Zero3Unit unit, IReadOnlyList<Zero3Unit> units, bool forward)
    {
        // A unit run with autograd's graph saved its gathered parameters: releasing one (set_) before backward would
        // invalidate the graph, so nothing is released until the end of the pass.
        if (passUsedGraph) return;
        if (trace is not null && !traceBroken && ReusedSoon(unit, units)) return;
        foreach (var p in unit.Parameters) p.Release();
    }

    /// <summary>End of a micro-step's backward: fix the trace after the first pass and release everything.</summary>
    public void EndOfPass(IReadOnlyList<Zero3Unit> units)
    {
        if (trace is null && recording.Count > 0) FixTrace(units);
        else if (trace is not null && !traceBroken && position != trace.Count && position > 0)
        {
            traceBroken = true;
            Log.Warn("ZeRO-3: a micro-step fetched a different number of units than the first one; prefetching is off from now on");
        }
        position = 0;
        passUsedGraph = false;
        foreach (var u in units)
            foreach (var p in u.Parameters) p.Release();
    }

    private void FixTrace(IReadOnlyList<Zero3Unit> units)
    {
        long fetched = recording.Sum(e => units[e.Unit].PartitionedElements);
        // With the graph kept, backward fetches nothing: later micro-steps follow the forward part of the trace.
        graphMode = oneGradientBucket && Partitioned(units).Sum(p => p.Numel) <= maxLive && fetched <= maxReuseDistance;
        trace = recording.Where(e => e.Forward || !graphMode).Select(e => e.Unit).ToList();
        if (graphMode) Log.Info("ZeRO-3: the limits keep every unit gathered from forward to backward and one reduce bucket holds all gradients, so units run with autograd's graph (no re-gather or recomputation in backward)");
    }

    private void Prefetch(IReadOnlyList<Zero3Unit> units, Tensor master)
    {
        long inFlight = 0;
        long live = LiveElements(units);
        for (int j = position + 1; j < trace!.Count; j++)
        {
            var next = units[trace[j]];
            long need = next.Parameters.Where(p => !p.IsGathered && !p.IsGathering && !p.Persistent).Sum(p => p.Numel);
            if (need == 0) continue;
            if (inFlight + need > prefetchBucket || live + need > maxLive) break;
            foreach (var p in next.Parameters) p.BeginGather(master, training: true);
            inFlight += need;
            live += need;
        }
    }

    /// <summary>True when the trace uses <paramref name="unit"/> again after at most max_reuse_distance fetched elements.</summary>
    private bool ReusedSoon(Zero3Unit unit, IReadOnlyList<Zero3Unit> units)
    {
        long distance = 0;
        for (int j = position; j < trace!.Count; j++)
        {
            if (trace[j] == unit.Index) return distance <= maxReuseDistance && LiveElements(units) <= maxLive;
            distance += units[trace[j]].PartitionedElements;
            if (distance > maxReuseDistance) return false;
        }
        return false;
    }

    private Zero3Parameter[]? partitioned; // the units' distinct non-persistent parameters (fixed after construction)

    private Zero3Parameter[] Partitioned(IReadOnlyList<Zero3Unit> units) =>
        partitioned ??= units.SelectMany(u => u.Parameters).Distinct().Where(p => !p.Persistent).ToArray();

    private IEnumerable<Zero3Parameter> Live(IReadOnlyList<Zero3Unit> units) => Partitioned(units).Where(p => p.IsGathered || p.IsGathering);

    private long LiveElements(IReadOnlyList<Zero3Unit> units) => Live(units).Sum(p => p.Numel);

    private void TrackPeak(IReadOnlyList<Zero3Unit> units) => PeakLiveBytes = Math.Max(PeakLiveBytes, Live(units).Sum(p => p.FullBytes));
}
