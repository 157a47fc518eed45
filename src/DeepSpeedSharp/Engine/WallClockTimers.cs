using System.Diagnostics;

namespace DeepSpeedSharp.Engine;

/// <summary>
/// Named accumulating timers (DeepSpeed's <c>wall_clock_breakdown</c>: forward, backward, backward_inner,
/// backward_allreduce, step). Times are summed between reports and reset by <see cref="TakeMilliseconds"/>.
/// </summary>
public sealed class WallClockTimers
{
    /// <summary>Timer names, as DeepSpeed spells them in its log and monitor events.</summary>
    public const string Forward = "forward", Backward = "backward", BackwardInner = "backward_inner",
        BackwardAllreduce = "backward_allreduce", Step = "step";

    private readonly Dictionary<string, (long Ticks, int Count)> totals = new();

    /// <summary>Starts timing <paramref name="name"/>; dispose the result to stop.</summary>
    public Scope Time(string name) => new(this, name);

    /// <summary>Adds a measured duration.</summary>
    public void Add(string name, long ticks)
    {
        totals.TryGetValue(name, out var t);
        totals[name] = (t.Ticks + ticks, t.Count + 1);
    }

    /// <summary>Milliseconds accumulated per timer since the last call, in a fixed order; then resets.</summary>
    public IReadOnlyList<(string Name, double Milliseconds, int Count)> TakeMilliseconds()
    {
        var order = new[] { Forward, Backward, BackwardInner, BackwardAllreduce, Step };
        var result = totals.OrderBy(kv => Array.IndexOf(order, kv.Key) is var i && i < 0 ? int.MaxValue : i)
            .ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, kv.Value.Ticks * 1000.0 / Stopwatch.Frequency, kv.Value.Count))
            .ToList();
        totals.Clear();
        return result;
    }

    /// <summary>A running measurement.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly WallClockTimers owner;
        private readonly string name;
        private readonly long start;

        internal Scope(WallClockTimers owner, string name)
        {
            this.owner = owner;
            this.name = name;
            start = Stopwatch.GetTimestamp();
        }

        /// <summary>Stops the measurement.</summary>
        public void Dispose() => owner.Add(name, Stopwatch.GetTimestamp() - start);
    }
}
