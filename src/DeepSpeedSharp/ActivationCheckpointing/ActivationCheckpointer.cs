using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Utils;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>
/// The state of activation checkpointing (<c>deepspeed.checkpointing</c>) for one engine: its options, the mpu it
/// partitions over, the RNG streams, the contiguous buffers, statistics and timings.
/// <see cref="Checkpoint(Func{Tensor, Tensor}, Tensor)"/> runs a segment of the model without keeping its activations
/// and recomputes them in backward, with the same RNG state (identical dropout masks, bit-identical gradients).
/// <see cref="Configure"/> applies the <c>activation_checkpointing</c> config section; the section alone changes nothing
/// until model code calls <see cref="Checkpoint(Func{Tensor, Tensor}, Tensor)"/>.
/// <para>The engine owns one (<c>engine.ActivationCheckpointing</c>); model code written against DeepSpeed calls the
/// static <see cref="DeepSpeed.Checkpointing"/>, which forwards to the current engine's instance (before the first
/// engine, to the instance the next <see cref="DeepSpeed.Initialize"/> adopts).</para>
/// </summary>
public sealed class ActivationCheckpointer
{
    // The one process-wide reference, for DeepSpeed's module-level API (model code calls deepspeed.checkpointing.*
    // without an engine in hand): the current engine's state, or the one the next engine adopts.
    private static ActivationCheckpointer current = new();

    /// <summary>The current engine's state (or the one the next <see cref="DeepSpeed.Initialize"/> adopts): what
    /// <see cref="DeepSpeed.Checkpointing"/> forwards to.</summary>
    public static ActivationCheckpointer Current => Volatile.Read(ref current);

    /// <summary>An engine takes the current state as its own.</summary>
    internal static ActivationCheckpointer Adopt() => Current;

    /// <summary>An engine is done with <paramref name="state"/>: when it is still current, later calls start from a fresh one.</summary>
    internal static void Release(ActivationCheckpointer state) => Interlocked.CompareExchange(ref current, new ActivationCheckpointer(), state);


    private readonly object Lock = new();
    private CheckpointingSettings _settings = CheckpointingSettings.Defaults;
    private IModelParallelUnit? _mpu;
    private TensorParallelContext _mp = TensorParallelContext.Single;
    private bool _configured;
    private int _used, _warnedUnused, _warnedNoGradInputs, _warnedDeviceRng;
    private long _nextIndex;
    private Exception? _backwardError;
    private readonly RngStatesTracker Tracker = new();
    private readonly CheckpointProfiler Profiler = new();

    internal ContiguousCheckpointBuffers Buffers { get; } = new();

    /// <summary>Bytes of the tensors the live checkpoints keep (current and peak).</summary>
    public SavedActivationStats Stats { get; } = new();

    /// <summary>The effective options (defaults until <see cref="Configure"/>).</summary>
    public CheckpointingSettings Settings { get { lock (Lock) return _settings; } }

    /// <summary>The mpu given to <see cref="Configure"/> (null: no model parallelism).</summary>
    public IModelParallelUnit? Mpu { get { lock (Lock) return _mpu; } }

    /// <summary>True once <see cref="Checkpoint(Func{Tensor, Tensor}, Tensor)"/> (any overload) was called in this process.</summary>
    public bool WasUsed => Volatile.Read(ref _used) != 0;

    /// <summary>The most recent per-checkpoint timings (recorded when <c>profile</c> is on).</summary>
    public IReadOnlyList<CheckpointTiming> Timings => Profiler.Recent();

    /// <summary>
    /// <c>deepspeed.checkpointing.configure</c>: starts from the defaults, applies the <c>activation_checkpointing</c>
    /// section of <paramref name="deepspeedConfig"/> when given, then every explicit argument (which wins over the
    /// config). <paramref name="mpu"/> supplies the model-parallel group that partitioning splits across (null keeps
    /// an mpu given earlier; without one the model-parallel size is 1). Throws <see cref="ArgumentException"/> for
    /// combinations DeepSpeed rejects (see <see cref="CheckpointingSettings.Validate"/>), leaving the previous
    /// configuration in place.
    /// </summary>
    public void Configure(IModelParallelUnit? mpu, DeepSpeedConfig? deepspeedConfig = null, bool? partitionActivations = null,
        bool? contiguousCheckpointing = null, int? numCheckpoints = null, bool? checkpointInCpu = null, bool? synchronize = null, bool? profile = null)
    {
        var s = CheckpointingSettings.Defaults;
        if (deepspeedConfig != null)
        {
            var c = deepspeedConfig.ActivationCheckpointing;
            s = new CheckpointingSettings(c.PartitionActivations, c.CpuCheckpointing, c.ContiguousMemoryOptimization, c.NumberCheckpoints,
                c.SynchronizeCheckpointBoundary, c.Profile);
        }
        s = s with
        {
            PartitionActivations = partitionActivations ?? s.PartitionActivations,
            ContiguousMemoryOptimization = contiguousCheckpointing ?? s.ContiguousMemoryOptimization,
            NumberCheckpoints = numCheckpoints ?? s.NumberCheckpoints,
            CpuCheckpointing = checkpointInCpu ?? s.CpuCheckpointing,
            SynchronizeCheckpointBoundary = synchronize ?? s.SynchronizeCheckpointBoundary,
            Profile = profile ?? s.Profile,
        };
        s.Validate();
        var chosenMpu = mpu ?? Mpu;
        var mp = TensorParallelContext.From(chosenMpu);
        lock (Lock)
        {
            _settings = s;
            _mpu = chosenMpu;
            _mp = mp;
            _configured = true;
            Buffers.Clear();
        }
        Log.Info($"activation checkpointing: {s}, model-parallel size {mp.Size}");
    }

    /// <summary><c>is_configured()</c>: true after <see cref="Configure"/>.</summary>
    public bool IsConfigured() { lock (Lock) return _configured; }

    /// <summary>
    /// <c>reset()</c>: forgets the contiguous buffers' fill position. Call it between forward passes that have no
    /// backward (evaluation) when <c>contiguous_memory_optimization</c> is on.
    /// </summary>
    public void Reset() => Buffers.Clear();

    /// <summary><c>set_num_layers(n)</c>: sets number_checkpoints (the contiguous buffers' capacity).</summary>
    public void SetNumLayers(int numLayers)
    {
        var s = Settings with { NumberCheckpoints = numLayers };
        s.Validate();
        lock (Lock) { _settings = s; Buffers.Clear(); }
    }

    /// <summary><c>partition_activations_in_checkpoint(flag)</c>: turns partitioning on or off.</summary>
    public void PartitionActivationsInCheckpoint(bool partitionActivations)
    {
        var s = Settings with { PartitionActivations = partitionActivations };
        s.Validate();
        lock (Lock) { _settings = s; Buffers.Clear(); }
        Log.Info($"activation checkpointing: partition_activations={partitionActivations}");
    }

    /// <summary>Checkpoints a one-input, one-output segment such as a transformer block: <c>Checkpoint(block.call, x)</c>.</summary>
    public Tensor Checkpoint(Func<Tensor, Tensor> function, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(function);
        return CheckpointCore(xs => [function(xs[0])], [input])[0];
    }

    /// <summary>Checkpoints a segment of several inputs and one output.</summary>
    public Tensor Checkpoint(Func<Tensor[], Tensor> function, params Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(function);
        return CheckpointCore(xs => [function(xs)], inputs)[0];
    }

    /// <summary>
    /// <c>deepspeed.checkpointing.checkpoint(function, *args)</c> (reentrant): runs <paramref name="function"/> on
    /// <paramref name="inputs"/> without recording its graph, keeps only the inputs, and in backward re-runs it with
    /// the forward's RNG state and back-propagates through the recomputation. Gradients reach the inputs that require
    /// grad and every parameter the function uses. Non-tensor arguments are captured by the lambda. With grad
    /// disabled, or when no input requires grad, the function simply runs without a graph (as PyTorch's reentrant
    /// checkpoint: a warning says parameter gradients will be missing in the second case).
    /// </summary>
    public Tensor[] Checkpoint(Func<Tensor[], Tensor[]> function, params Tensor[] inputs) => CheckpointCore(function, inputs);

    private Tensor[] CheckpointCore(Func<Tensor[], Tensor[]> function, Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(inputs);
        for (int i = 0; i < inputs.Length; i++)
            if (inputs[i] is null || inputs[i].IsInvalid)
                throw new ArgumentException($"checkpoint input {i} is null or disposed; pass tensors only (capture other values in the function).", nameof(inputs));
        ThrowIfBackwardFailed();
        Volatile.Write(ref _used, 1);
        if (!is_grad_enabled()) return function(inputs);
        if (!inputs.Any(t => t.requires_grad))
        {
            if (Interlocked.Exchange(ref _warnedNoGradInputs, 1) == 0)
                Log.Warn("activation checkpoint: none of the inputs requires grad, so the segment runs without a graph and its parameters get no " +
                         "gradients (as with PyTorch's reentrant checkpoint); checkpoint a segment whose input requires grad.");
            using (no_grad()) return function(inputs);
        }
        if (inputs.Any(t => t.device_type != DeviceType.CPU) && Interlocked.Exchange(ref _warnedDeviceRng, 1) == 0)
            Log.Warn("activation checkpoint: only the CPU generator's state is saved and restored (TorchSharp exposes no device generator state), " +
                     "so random ops on the device may differ between forward and recompute.");
        CheckpointCall call;
        lock (Lock)
            call = new CheckpointCall(function, Interlocked.Increment(ref _nextIndex), _settings, _mp, Buffers, Tracker, Stats, Profiler, RecordBackwardError);
        var args = new object[inputs.Length + 1];
        args[0] = call;
        Array.Copy(inputs, 0, args, 1, inputs.Length);
        return CheckpointFunction.apply(args).ToArray();
    }

    /// <summary>
    /// Rethrows (once) the first failure of a checkpoint's backward since the last call. A backward runs inside
    /// libtorch's autograd engine, which cannot carry a .NET exception: the failing checkpoint returns no gradients,
    /// logs the error, and the exception surfaces here — called by the engine after Backward and by the next
    /// Checkpoint call.
    /// </summary>
    public void ThrowIfBackwardFailed()
    {
        var e = Interlocked.Exchange(ref _backwardError, null);
        if (e != null) throw e;
    }

    private void RecordBackwardError(Exception e)
    {
        Interlocked.CompareExchange(ref _backwardError, e, null);
        Log.All($"error: {e.Message}");
    }

    /// <summary>
    /// <c>model_parallel_cuda_manual_seed(seed)</c>: seeds the default generator with <paramref name="seed"/> (the same on
    /// every model-parallel rank: dropout outside model-parallel regions agrees) and the tracker's "model-parallel-rng"
    /// stream with seed + 2718 + tensor-parallel rank (different per tensor-parallel rank, the same across data-parallel
    /// replicas). The tensor rank comes from <paramref name="mpu"/>, or else from the mpu given to <see cref="Configure"/>
    /// (a model that uses the RNG tracker without activation checkpointing passes its mpu here instead of configuring).
    /// </summary>
    public void ModelParallelManualSeed(long seed, IModelParallelUnit? mpu = null)
    {
        mpu ??= Mpu;
        int tpRank = mpu?.GetTensorModelParallelRank() ?? 0, dpRank = mpu?.GetDataParallelRank() ?? 0;
        long modelParallelSeed = seed + 2718 + tpRank;
        Log.Info($"activation checkpointing: tensor-parallel rank {tpRank}, data-parallel rank {dpRank}: model-parallel seed {modelParallelSeed}, data-parallel seed {seed}");
        Tracker.Reset();
        manual_seed(seed);
        Tracker.Add(RngStatesTracker.ModelParallelRngName, modelParallelSeed);
    }

    /// <summary><c>get_cuda_rng_tracker()</c>: the process's named RNG streams.</summary>
    public RngStatesTracker GetRngTracker() => Tracker;

    /// <summary>
    /// Warns once when activation checkpointing was asked for (the config's <c>activation_checkpointing</c> section sets
    /// a non-default value, or <see cref="Configure"/> was called) but the model never called Checkpoint: the config
    /// alone does nothing. The engine calls this after the first optimizer step. Returns true when it warned.
    /// </summary>
    public bool WarnIfConfiguredButUnused(DeepSpeedConfig? config)
    {
        if (WasUsed) return false;
        bool requested = IsConfigured() || (config != null && config.ActivationCheckpointing != new ActivationCheckpointingConfig());
        if (!requested || Interlocked.Exchange(ref _warnedUnused, 1) != 0) return false;
        Log.Warn("the config enables activation_checkpointing but the model never called DeepSpeed.Checkpointing.Checkpoint: the config section " +
                 "alone changes nothing (as in DeepSpeed). Wrap the layers to recompute, e.g. x = DeepSpeed.Checkpointing.Checkpoint(block.call, x).");
        return true;
    }
}
