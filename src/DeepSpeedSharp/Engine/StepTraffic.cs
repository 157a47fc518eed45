using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Engine;

/// <summary>Bytes one operation kind sent in a step: in all, and to ranks on other hosts.</summary>
/// <param name="Sent">Bytes sent by this rank.</param>
/// <param name="CrossHost">Of those, bytes sent to ranks with another host id.</param>
public readonly record struct OpTraffic(long Sent, long CrossHost);

/// <summary>
/// What this rank sent during one optimizer step, per operation ("all_gather", "reduce_scatter", ...), for the whole
/// step and for its backward passes (from <c>Backward</c> until its gradient reduction finished). Bytes count when an
/// operation completes, so an asynchronous prefetch counts in the phase it completes in.
/// </summary>
public sealed record StepTraffic(IReadOnlyDictionary<string, OpTraffic> ByOp, IReadOnlyDictionary<string, OpTraffic> BackwardByOp)
{
    /// <summary>Bytes sent in the step.</summary>
    public long Sent => ByOp.Values.Sum(t => t.Sent);

    /// <summary>Bytes sent to other hosts in the step.</summary>
    public long CrossHost => ByOp.Values.Sum(t => t.CrossHost);

    /// <summary>One line: totals, then each operation with its backward share.</summary>
    public override string ToString() =>
        $"sent {Sent} bytes, {CrossHost} to other hosts" + string.Concat(ByOp.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv =>
        {
            var b = BackwardByOp.GetValueOrDefault(kv.Key);
            return $"; {kv.Key} {kv.Value.Sent} ({kv.Value.CrossHost} to other hosts), in backward {b.Sent} ({b.CrossHost} to other hosts)";
        }));
}

/// <summary>Reads the comms logger's always-on counters at phase boundaries and turns them into a <see cref="StepTraffic"/> per step.</summary>
internal sealed class StepTrafficMeter
{
    private readonly CommsLogger logger;
    private Snapshot stepStart, backwardStart;
    private readonly Dictionary<string, OpTraffic> backward = new(StringComparer.Ordinal);

    private readonly record struct Snapshot(IReadOnlyDictionary<string, long> Sent, IReadOnlyDictionary<string, long> CrossHost);

    public StepTrafficMeter(CommsLogger logger)
    {
        this.logger = logger;
        stepStart = backwardStart = Take();
    }

    /// <summary>The last completed step's traffic (empty before the first step).</summary>
    public StepTraffic Last { get; private set; } = new(new Dictionary<string, OpTraffic>(), new Dictionary<string, OpTraffic>());

    public void BeginBackward() => backwardStart = Take();

    public void EndBackward()
    {
        foreach (var (op, t) in Difference(backwardStart, Take()))
            backward[op] = new OpTraffic(backward.GetValueOrDefault(op).Sent + t.Sent, backward.GetValueOrDefault(op).CrossHost + t.CrossHost);
    }

    public void EndStep()
    {
        var now = Take();
        Last = new StepTraffic(Difference(stepStart, now), new Dictionary<string, OpTraffic>(backward));
        backward.Clear();
        stepStart = now;
    }

    private Snapshot Take() => new(logger.BytesSentByOp, logger.BytesSentCrossHostByOp);

    private static Dictionary<string, OpTraffic> Difference(Snapshot from, Snapshot to) =>
        to.Sent.Keys.Select(op => (op, t: new OpTraffic(to.Sent[op] - from.Sent.GetValueOrDefault(op), to.CrossHost.GetValueOrDefault(op) - from.CrossHost.GetValueOrDefault(op))))
            .Where(x => x.t.Sent != 0)
            .ToDictionary(x => x.op, x => x.t, StringComparer.Ordinal);
}
