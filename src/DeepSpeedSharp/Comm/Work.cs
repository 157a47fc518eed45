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

    internal Work(string operation, long sequenceNumber)
    {
        Operation = operation;
        SequenceNumber = sequenceNumber;
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
        _done.Wait();
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
