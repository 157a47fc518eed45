using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>
/// <c>contiguous_memory_optimization</c>: per input position, one preallocated buffer of
/// <c>number_checkpoints</c> equal slots; each checkpoint copies its saved partition into the next slot instead of
/// allocating its own tensor (less fragmentation; once warm, no allocation per step). Slots are handed out in
/// forward order; the first backward after a forward makes the next forward start at slot 0 again, reusing the
/// same buffer when all its slots were released, else allocating a fresh one (the old storage lives on in the
/// slots still in use).
/// </summary>
internal sealed class ContiguousCheckpointBuffers
{
    private readonly object _lock = new();
    private readonly List<Buffer?> _buffers = new();
    private bool _restartPending;

    /// <summary>Buffers allocated since creation (a steady state allocates none per step).</summary>
    public int Allocations { get; private set; }

    /// <summary>Copies <paramref name="partition"/> (flat) into the next slot for input position <paramref name="index"/>.</summary>
    public Slot Store(int index, Tensor partition, int capacity, Device device)
    {
        lock (_lock)
        {
            if (_restartPending)
            {
                foreach (var b in _buffers) if (b != null) b.Next = 0;
                _restartPending = false;
            }
            while (_buffers.Count <= index) _buffers.Add(null);
            var buf = _buffers[index];
            long slotSize = partition.numel();
            if (buf != null && (buf.SlotSize != slotSize || buf.Flat.dtype != partition.dtype || buf.Capacity != capacity || !DeviceSync.Same(buf.Flat.device, device)))
            {
                if (buf.Next > 0)
                    throw new InvalidOperationException(
                        $"contiguous_memory_optimization needs checkpoints of the same shape in one forward pass: input {index} saved {buf.SlotSize} {buf.Flat.dtype} " +
                        $"elements per checkpoint so far, now {slotSize} {partition.dtype}; turn contiguous_memory_optimization off for heterogeneous checkpoints.");
                buf = Drop(index);
            }
            if (buf != null && buf.Next >= capacity)
                throw new InvalidOperationException(
                    $"contiguous_memory_optimization: more than number_checkpoints={capacity} checkpoints in one forward pass (input {index}); set " +
                    "number_checkpoints to the number of Checkpoint calls per forward, or call Checkpointing.Reset() between forward passes that have no backward.");
            if (buf != null && buf.Next == 0 && buf.Live > 0) buf = Drop(index); // previous step's slots still in use
            if (buf == null)
            {
                buf = new Buffer(empty(new[] { capacity * slotSize }, partition.dtype, device).DetachFromDisposeScope(), slotSize, capacity);
                _buffers[index] = buf;
                Allocations++;
            }
            var view = buf.Flat.narrow(0, buf.Next * slotSize, slotSize).DetachFromDisposeScope();
            using (no_grad()) view.copy_(partition);
            buf.Next++;
            buf.Live++;
            return new Slot(this, buf, view);
        }
    }

    /// <summary>A backward started: the next forward fills the buffers from slot 0 again.</summary>
    public void BackwardStarted()
    {
        lock (_lock) _restartPending = true;
    }

    /// <summary>Drops every buffer (slots still in use keep their storage alive).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            for (int i = 0; i < _buffers.Count; i++) Drop(i);
            _buffers.Clear();
            _restartPending = false;
        }
    }

    private Buffer? Drop(int index)
    {
        _buffers[index]?.Flat.Dispose(); // slot views keep the storage while in use
        _buffers[index] = null;
        return null;
    }

    private void Release(Buffer b)
    {
        lock (_lock) b.Live--;
    }

    private sealed class Buffer(Tensor flat, long slotSize, int capacity)
    {
        public Tensor Flat { get; } = flat;
        public long SlotSize { get; } = slotSize;
        public int Capacity { get; } = capacity;
        public int Next;
        public int Live;
    }

    /// <summary>One checkpoint's slot: a view into a buffer, released when the checkpoint's backward is done.</summary>
    internal sealed class Slot : IDisposable
    {
        private readonly ContiguousCheckpointBuffers _owner;
        private readonly Buffer _buffer;
        private bool _disposed;

        internal Slot(ContiguousCheckpointBuffers owner, object buffer, Tensor view)
        {
            _owner = owner;
            _buffer = (Buffer)buffer;
            View = view;
        }

        /// <summary>The slot's elements.</summary>
        public Tensor View { get; }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            View.Dispose();
            _owner.Release(_buffer);
        }

        /// <summary>Marks the slot free; its view is left to its own finaliser.</summary>
        public void ReleaseWithoutDisposing()
        {
            if (_disposed) return;
            _disposed = true;
            _owner.Release(_buffer);
        }
    }
}
