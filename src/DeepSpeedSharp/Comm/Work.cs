using System.Runtime.ExceptionServices;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// Handle of an asynchronous operation. The tensors passed to the operation must stay alive and must not be
/// modified until <see cref="Wait"/> returns.
/// </summary>
public sealed class Work
{
    private readonly ManualResetEventSlim _done = new(false);
    private Exception? _error;

    // A wait longer than this is announced to the heartbeat (with its call site), for the deadlock check.
    private static readonly TimeSpan AnnounceAfter = TimeSpan.FromMilliseconds(500);
    private readonly Liveness.CommActivity? _activity;
    private readonly object? _lane;

    internal Work(string operation, long sequenceNumber, Liveness.CommActivity? activity = null, object? lane = null)
    {
        Operation = operation;
        SequenceNumber = sequenceNumber;
        _activity = activity;
        _lane = lane;
    }

    /// <summary>The operation's name.</summary>
    public string Operation { get; }

    /// <summary>The group sequence number the operation was given when it was issued.</summary>
    public long SequenceNumber { get; }

    /// <summary>True when the operation finished (successfully or not).</summary>
    public bool IsCompleted => _done.IsSet;

    /// <summary>Blocks until the operation finished; rethrows its failure.</summary>
    public void Wait()
    {
        if (_activity != null && _lane != null && !_done.Wait(AnnounceAfter))
        {
            // Blocked a while: the heartbeat now says this rank waits here, and from where it was called.
            long token = _activity.BeginWait(_lane, Liveness.CallSites.Here());
            try { _done.Wait(); }
            finally { _activity.EndWait(token); }
        }
        else _done.Wait();
        if (_error != null) ExceptionDispatchInfo.Capture(_error).Throw();
    }

    internal static Work Completed(string operation, long seq)
    {
        var w = new Work(operation, seq);
        w.Complete(null);
        return w;
    }

    internal void Complete(Exception? error)
    {
        _error = error;
        _done.Set();
    }
}
