using System.Globalization;
using DeepSpeedSharp.Utils;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>One measured phase of one checkpoint (when <c>profile</c> is on).</summary>
/// <param name="Checkpoint">The checkpoint's sequence number (counts every checkpointed call of the process).</param>
/// <param name="Phase">"forward" (the no-grad forward), "recompute" (the forward re-run in backward) or "backward" (recompute plus backward).</param>
/// <param name="Milliseconds">Wall-clock time of the phase.</param>
public sealed record CheckpointTiming(long Checkpoint, string Phase, double Milliseconds);

/// <summary>Keeps the most recent timings and writes each to the log (DeepSpeed's per-checkpoint forward/backward timer log).</summary>
internal sealed class CheckpointProfiler
{
    private const int Capacity = 4096;
    private readonly Queue<CheckpointTiming> _recent = new();

    public void Record(long checkpoint, string phase, TimeSpan elapsed)
    {
        var t = new CheckpointTiming(checkpoint, phase, elapsed.TotalMilliseconds);
        lock (_recent)
        {
            if (_recent.Count == Capacity) _recent.Dequeue();
            _recent.Enqueue(t);
        }
        Log.Info(string.Create(CultureInfo.InvariantCulture, $"activation checkpoint {checkpoint}: {phase} {t.Milliseconds:F2} ms"));
    }

    public IReadOnlyList<CheckpointTiming> Recent()
    {
        lock (_recent) return _recent.ToArray();
    }

    public void Clear()
    {
        lock (_recent) _recent.Clear();
    }
}
