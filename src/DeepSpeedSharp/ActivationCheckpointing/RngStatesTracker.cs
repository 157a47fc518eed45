using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>
/// Named RNG streams (Megatron/DeepSpeed's <c>CudaRNGStatesTracker</c>): <see cref="Add"/> seeds a stream,
/// <see cref="Fork"/> runs a region with that stream as the default generator and then restores the previous
/// state. Tensor-parallel dropout forks "model-parallel-rng" so each model-parallel rank draws a different mask,
/// while the default stream stays identical across the model-parallel group. Checkpointing snapshots these states
/// before a checkpoint's forward and restores them for the recompute. On this CPU build the streams drive the
/// default CPU generator (the device that runs dropout here).
/// </summary>
public sealed class RngStatesTracker
{
    /// <summary>The stream name DeepSpeed and Megatron use for model-parallel regions.</summary>
    public const string ModelParallelRngName = "model-parallel-rng";

    private readonly object _lock = new();
    private Dictionary<string, Tensor> _states = new();
    private HashSet<long> _seeds = new();

    /// <summary>Forgets every stream.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _states = new Dictionary<string, Tensor>();
            _seeds = new HashSet<long>();
        }
    }

    /// <summary>Names of the tracked streams.</summary>
    public IReadOnlyCollection<string> Names { get { lock (_lock) return _states.Keys.ToArray(); } }

    /// <summary>A copy of the name → state map (the states themselves are never modified in place).</summary>
    public IReadOnlyDictionary<string, Tensor> GetStates()
    {
        lock (_lock) return new Dictionary<string, Tensor>(_states);
    }

    /// <summary>Replaces the map with <paramref name="states"/> (as returned by <see cref="GetStates"/>).</summary>
    public void SetStates(IReadOnlyDictionary<string, Tensor> states)
    {
        ArgumentNullException.ThrowIfNull(states);
        lock (_lock) _states = new Dictionary<string, Tensor>(states);
    }

    /// <summary>Adds the stream <paramref name="name"/> seeded with <paramref name="seed"/>; a name or seed may be added once.</summary>
    public void Add(string name, long seed)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_lock)
        {
            if (_seeds.Contains(seed)) throw new ArgumentException($"RNG tracker: seed {seed} is already used by another stream.", nameof(seed));
            if (_states.ContainsKey(name)) throw new ArgumentException($"RNG tracker: stream '{name}' already exists.", nameof(name));
            var original = CpuRng.GetState();
            try
            {
                manual_seed(seed);
                _states[name] = CpuRng.GetState();
            }
            finally
            {
                CpuRng.SetState(original);
                original.Dispose();
            }
            _seeds.Add(seed);
        }
    }

    /// <summary>
    /// Makes stream <paramref name="name"/> the default generator until the returned handle is disposed; then the
    /// stream keeps its advanced state and the default generator returns to where it was.
    /// </summary>
    public IDisposable Fork(string name = ModelParallelRngName)
    {
        Tensor state;
        lock (_lock)
            if (!_states.TryGetValue(name, out state!))
                throw new InvalidOperationException($"RNG tracker: stream '{name}' was never added; call Checkpointing.ModelParallelManualSeed(seed) or GetRngTracker().Add(\"{name}\", seed) first.");
        var original = CpuRng.GetState();
        CpuRng.SetState(state);
        return new ForkScope(this, name, original);
    }

    private sealed class ForkScope(RngStatesTracker tracker, string name, Tensor original) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            var advanced = CpuRng.GetState();
            lock (tracker._lock) tracker._states[name] = advanced;
            CpuRng.SetState(original);
            original.Dispose();
        }
    }
}
