using DeepSpeedSharp.Topology;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>Everything one checkpointed call needs, passed to the autograd function as its first (non-tensor) argument.</summary>
internal sealed record CheckpointCall(
    Func<Tensor[], Tensor[]> Function,
    long Index,
    CheckpointingSettings Settings,
    TensorParallelContext ModelParallel,
    ContiguousCheckpointBuffers Buffers,
    RngStatesTracker Tracker,
    SavedActivationStats Stats,
    CheckpointProfiler Profiler,
    Action<Exception> OnBackwardError);

/// <summary>The state a checkpoint keeps in its autograd context between forward and backward.</summary>
internal sealed class CheckpointState(CheckpointCall call, SavedInputs saved, bool[] requiresGrad, Tensor cpuRngState,
    IReadOnlyDictionary<string, Tensor> trackerStates, Device device)
{
    public CheckpointCall Call { get; } = call;
    public SavedInputs Saved { get; } = saved;
    public bool[] RequiresGrad { get; } = requiresGrad;
    public Tensor CpuRngState { get; } = cpuRngState;
    public IReadOnlyDictionary<string, Tensor> TrackerStates { get; } = trackerStates;
    public Device Device { get; } = device;
    public bool Consumed { get; set; }
    private int _released;

    /// <summary>Frees the saved inputs once backward used them.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        GC.SuppressFinalize(this);
        Call.Stats.Released(Saved.Bytes);
        Saved.Dispose();
        CpuRngState.Dispose();
    }

    /// <summary>
    /// A forward whose backward never ran (its graph was dropped): the tensors are finalised on their own; only the
    /// accounting (saved bytes, contiguous slots) is settled here.
    /// </summary>
    ~CheckpointState()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        Call.Stats.Released(Saved.Bytes);
        Saved.ReleaseSlotsWithoutDisposing();
    }
}

/// <summary>
/// The reentrant checkpoint as a custom autograd function (DeepSpeed's <c>CheckpointFunction</c>): forward runs
/// the user's function without recording a graph and keeps only the inputs (and RNG states); backward restores the
/// inputs and the forward's RNG states, re-runs the function with grad enabled on detached inputs, and back-propagates
/// the incoming gradients through that recomputed graph, which also accumulates the parameters' gradients.
/// </summary>
internal sealed class CheckpointFunction : autograd.MultiTensorFunction<CheckpointFunction>
{
    private const string StateKey = "dss-checkpoint";

    public override string Name => "DeepSpeedSharpCheckpoint";

    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var call = (CheckpointCall)vars[0];
        var inputs = new Tensor[vars.Length - 1];
        for (int i = 1; i < vars.Length; i++) inputs[i - 1] = (Tensor)vars[i];
        var s = call.Settings;
        var device = inputs.Length > 0 ? inputs[0].device : CPU;
        if (s.SynchronizeCheckpointBoundary) DeviceSync.Synchronize(device, call.Stats);
        var clock = Stopwatch.StartNew();

        var saved = SavedInputs.Save(inputs, s, call.ModelParallel, call.Buffers);
        var cpuState = CpuRng.GetState();
        var trackerStates = call.Tracker.GetStates();
        Tensor[] outputs;
        try
        {
            outputs = Run(call, inputs);
        }
        catch
        {
            saved.Dispose();
            cpuState.Dispose();
            throw;
        }
        ctx.save_data(StateKey, new CheckpointState(call, saved, inputs.Select(t => t.requires_grad).ToArray(), cpuState, trackerStates, device));
        var nonDifferentiable = outputs.Where(o => !o.is_floating_point()).ToList();
        if (nonDifferentiable.Count > 0) ctx.mark_non_differentiable(nonDifferentiable);
        call.Stats.Saved(saved.Bytes);

        if (s.Profile) call.Profiler.Record(call.Index, "forward", clock.Elapsed);
        if (s.SynchronizeCheckpointBoundary) DeviceSync.Synchronize(device, call.Stats);
        return outputs.ToList();
    }

    /// <summary>Runs the user's function in a dispose scope, keeping only the outputs (moved to the caller's scope).</summary>
    internal static Tensor[] Run(CheckpointCall call, Tensor[] inputs)
    {
        using var scope = NewDisposeScope();
        var outputs = call.Function(inputs) ?? throw new InvalidOperationException("the checkpointed function returned null; it must return its output tensor(s).");
        if (outputs.Length == 0) throw new InvalidOperationException("the checkpointed function returned no tensors; it must return at least one output.");
        var result = new Tensor[outputs.Length];
        for (int i = 0; i < outputs.Length; i++)
        {
            var o = outputs[i] ?? throw new InvalidOperationException($"the checkpointed function returned null as output {i}; return tensors only.");
            // An input returned unchanged must become a distinct tensor for autograd to give it a new grad_fn.
            if (inputs.Any(x => x.Handle == o.Handle)) o = o.alias();
            result[i] = o.MoveToOuterDisposeScope();
        }
        return result;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grad_outputs)
    {
        // An exception must not leave this callback: it runs under libtorch's native autograd engine, where an unhandled
        // managed exception terminates the process. Failures are recorded and rethrown by the next Checkpoint call or by
        // DeepSpeed.Checkpointing.ThrowIfBackwardFailed() (the engine calls it after Backward).
        var st = (CheckpointState)ctx.get_data(StateKey);
        var call = st.Call;
        var s = call.Settings;
        try
        {
            if (st.Consumed)
                throw new InvalidOperationException("a second backward reached the same activation checkpoint (retain_graph / autograd.grad); " +
                                                    "checkpointed segments support one backward per forward, as DeepSpeed's reentrant checkpoint does.");
            st.Consumed = true;
            call.Buffers.BackwardStarted();
            if (s.SynchronizeCheckpointBoundary) DeviceSync.Synchronize(st.Device, call.Stats);
            var clock = Stopwatch.StartNew();
            var result = new List<Tensor> { null! };
            using (var scope = NewDisposeScope())
            {
                var full = st.Saved.Restore();
                var detached = new Tensor[full.Length];
                for (int i = 0; i < full.Length; i++)
                    detached[i] = full[i].detach().requires_grad_(st.RequiresGrad[i]);

                var recompute = Stopwatch.StartNew();
                var bwdCpuState = CpuRng.GetState();
                var bwdTrackerStates = call.Tracker.GetStates();
                CpuRng.SetState(st.CpuRngState);
                call.Tracker.SetStates(st.TrackerStates);
                Tensor[] outputs;
                try
                {
                    using (enable_grad()) outputs = Run(call, detached);
                }
                finally
                {
                    CpuRng.SetState(bwdCpuState);
                    call.Tracker.SetStates(bwdTrackerStates);
                    bwdCpuState.Dispose();
                }
                if (s.Profile) call.Profiler.Record(call.Index, "recompute", recompute.Elapsed);

                var roots = new List<Tensor>();
                var grads = new List<Tensor>();
                for (int i = 0; i < outputs.Length && i < grad_outputs.Count; i++)
                {
                    var g = grad_outputs[i];
                    if (outputs[i].requires_grad && g is not null && !g.IsInvalid)
                    {
                        roots.Add(outputs[i]);
                        grads.Add(g);
                    }
                }
                if (roots.Count > 0) autograd.backward(roots, grads);
                foreach (var o in outputs) o.Dispose();
                foreach (var d in detached)
                {
                    var g = d.requires_grad ? d.grad : null;
                    result.Add(g is null || g.IsInvalid ? null! : g.MoveToOuterDisposeScope());
                }
            }
            if (s.Profile) call.Profiler.Record(call.Index, "backward", clock.Elapsed);
            if (s.SynchronizeCheckpointBoundary) DeviceSync.Synchronize(st.Device, call.Stats);
            return result;
        }
        catch (Exception e)
        {
            call.OnBackwardError(new InvalidOperationException($"activation checkpoint {call.Index} failed in backward: {e.Message}", e));
            return Enumerable.Repeat<Tensor>(null!, 1 + st.RequiresGrad.Length).ToList();
        }
        finally
        {
            st.Release();
        }
    }
}
