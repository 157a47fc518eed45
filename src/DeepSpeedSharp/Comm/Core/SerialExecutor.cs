namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// One background thread running queued operations strictly in submission order (FIFO), so asynchronous
/// collectives execute in the same order on every rank.
/// </summary>
internal sealed class SerialExecutor : IDisposable
{
    private readonly Queue<Action> _queue = new();
    private readonly Thread _thread;
    private bool _stopping;

    public SerialExecutor(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Staging buffers owned by this executor's thread.</summary>
    public StagingPool Staging { get; } = new();

    public void Post(Action action)
    {
        lock (_queue)
        {
            if (_stopping) throw new ObjectDisposedException(_thread.Name, "the process group was destroyed");
            _queue.Enqueue(action);
            Monitor.Pulse(_queue);
        }
    }

    private void Loop()
    {
        while (true)
        {
            Action next;
            lock (_queue)
            {
                while (_queue.Count == 0 && !_stopping) Monitor.Wait(_queue);
                if (_queue.Count == 0) break;
                next = _queue.Dequeue();
            }
            next();
        }
        Staging.Dispose();
    }

    public void Dispose()
    {
        lock (_queue)
        {
            _stopping = true;
            Monitor.PulseAll(_queue);
        }
        if (Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(30));
    }
}
