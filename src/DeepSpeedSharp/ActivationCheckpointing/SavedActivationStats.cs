namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>
/// Bytes of the tensors checkpointing keeps between a checkpoint's forward and its backward (the saved inputs or
/// their partitions), counted as numel × element size. Thread-safe.
/// </summary>
public sealed class SavedActivationStats
{
    private long _current, _peak, _live, _total, _syncs;

    /// <summary>Bytes held now.</summary>
    public long CurrentBytes => Interlocked.Read(ref _current);

    /// <summary>Largest <see cref="CurrentBytes"/> since the last <see cref="ResetPeak"/>.</summary>
    public long PeakBytes => Interlocked.Read(ref _peak);

    /// <summary>Checkpoints whose backward has not run yet.</summary>
    public long LiveCheckpoints => Interlocked.Read(ref _live);

    /// <summary>Checkpoints that saved inputs since the process started.</summary>
    public long TotalCheckpoints => Interlocked.Read(ref _total);

    /// <summary>Device synchronisations at checkpoint boundaries (<c>synchronize_checkpoint_boundary</c>; a no-op wait on CPU).</summary>
    public long BoundarySyncs => Interlocked.Read(ref _syncs);

    internal void Synchronized() => Interlocked.Increment(ref _syncs);

    /// <summary>Starts a new peak measurement from the current value.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, CurrentBytes);

    internal void Saved(long bytes)
    {
        long now = Interlocked.Add(ref _current, bytes);
        Interlocked.Increment(ref _live);
        Interlocked.Increment(ref _total);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak) { }
    }

    internal void Released(long bytes)
    {
        Interlocked.Add(ref _current, -bytes);
        Interlocked.Decrement(ref _live);
    }
}
