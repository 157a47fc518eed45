using DeepSpeedSharp.ActivationCheckpointing;
using DeepSpeedSharp.Training;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Precision;
using DeepSpeedSharp.Schedulers;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

/// <summary>
/// The training engine returned by <see cref="DeepSpeed.Initialize"/>: wraps the user's module and optimizer and
/// runs DeepSpeed's training-loop contract — <see cref="Forward(Tensor)"/>, <see cref="Backward"/> (scaled by
/// 1/gradient_accumulation_steps) and <see cref="Step"/> (optimizer, clipping and scheduler only at the
/// gradient-accumulation boundary). Features (data parallelism, ZeRO, precision) are separate components that
/// the engine calls in order; it does not implement them itself.
/// </summary>
public partial class DeepSpeedEngine : IDisposable
{
    private readonly ProgressReporter progress;
    private readonly MemoryTimeline? timeline;
    private readonly ITrainingStrategy? strategy;
    private bool stepApplied;
    private double? lastGradNorm;
    private long bytesSentAtLastStep;
    private readonly StepTrafficMeter traffic = new(Dist.Logger);
    private double stepLossSum;
    private int stepLossCount;
    private long lastStepTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();

    internal DeepSpeedEngine(nn.Module module, ITrainingStrategy? strategy, LrScheduler? lrScheduler,
        DeepSpeedConfig config, BatchSizes batch, PrecisionPolicy precision, ParallelLayout layout)
    {
        Layout = layout;
        ActivationCheckpointing = ActivationCheckpointer.Adopt();
        var dataParallelGroup = layout.DataParallelGroup ?? throw new ArgumentException("an engine needs a running job's layout, not a plan", nameof(layout));
        Precision = precision;
        Module = module;
        this.strategy = strategy;
        Optimizer = strategy?.Optimizer;
        DataParallelGroup = dataParallelGroup;
        LrScheduler = lrScheduler;
        Config = config;
        Batch = batch;
        GlobalRank = dataParallelGroup.GlobalRank;
        LocalRank = Dist.IsInitialized ? Dist.LocalRank : 0;
        DataParallelWorldSize = dataParallelGroup.Size;
        Timers = new WallClockTimers();
        progress = new ProgressReporter(config.StepsPerPrint, config.WallClockBreakdown, config.Timers.ThroughputEnabled,
            config.MemoryBreakdown ? ModelStateBytes : null);
        timeline = config.MemoryBreakdown ? new MemoryTimeline(ModelStateBytes, config.StepsPerPrint) : null;
    }

    /// <summary>The wrapped model (DeepSpeed's <c>engine.module</c>).</summary>
    public nn.Module Module { get; }

    /// <summary>The optimizer (built from the config or passed in); null for an inference-only engine.</summary>
    public optim.Optimizer? Optimizer { get; }

    /// <summary>The learning-rate scheduler, stepped once per optimizer step; may be null.</summary>
    public LrScheduler? LrScheduler { get; }

    /// <summary>The training precision (model dtype, fp32 gradient accumulation, loss scaler).</summary>
    public PrecisionPolicy Precision { get; }

    /// <summary>The current fp16 loss scale (1 without fp16).</summary>
    public double LossScale => Precision.LossScale;

    /// <summary>The parsed DeepSpeed configuration.</summary>
    public DeepSpeedConfig Config { get; }

    /// <summary>The resolved batch sizes.</summary>
    public BatchSizes Batch { get; }

    /// <summary>Accumulated wall-clock timers (forward, backward, step).</summary>
    public WallClockTimers Timers { get; }

    /// <summary>Global batch size: micro × accumulation steps × data-parallel ranks.</summary>
    public int TrainBatchSize => Batch.TrainBatchSize;

    /// <summary>Micro-batch per rank.</summary>
    public int TrainMicroBatchSizePerGpu => Batch.MicroBatchPerGpu;

    /// <summary>Micro-steps per optimizer step.</summary>
    public int GradientAccumulationSteps => Batch.GradientAccumulationSteps;

    /// <summary>This process's rank in the world.</summary>
    public int GlobalRank { get; }

    /// <summary>This process's rank on its host.</summary>
    public int LocalRank { get; }

    /// <summary>Number of data-parallel ranks.</summary>
    public int DataParallelWorldSize { get; }

    /// <summary>The data-parallel process group (DeepSpeed's <c>data_parallel_group</c>).</summary>
    public ProcessGroup DataParallelGroup { get; }

    /// <summary>This rank's index in the data-parallel group.</summary>
    public int DataParallelRank => DataParallelGroup.Rank;

    /// <summary>This engine's activation-checkpointing state (what <c>DeepSpeed.Checkpointing</c> forwards to while the
    /// engine is current): configured before <see cref="DeepSpeed.Initialize"/> or through it.</summary>
    public ActivationCheckpointer ActivationCheckpointing { get; }

    /// <summary>The job's parallel layout (pipeline, tensor, sequence and data sizes, ZeRO stage, groups), built and checked once by <see cref="DeepSpeed.Initialize"/>.</summary>
    public ParallelLayout Layout { get; }

    /// <summary>The topology passed to <see cref="DeepSpeed.Initialize"/> as <c>mpu</c>, or null (data parallelism only).</summary>
    public IModelParallelUnit? Mpu => Layout.Mpu;

    /// <summary>Ranks holding one model replica (pipeline × tensor): DeepSpeed's <c>mp_world_size</c>; 1 without an mpu.</summary>
    public int ModelParallelWorldSize => Layout.ModelParallelSize;

    /// <summary>This rank's model-parallel rank (<c>get_model_parallel_rank</c>; the <c>mp_rank_XX</c> of checkpoint files).</summary>
    public int GetModelParallelRank() => Layout.ModelParallelRank;

    /// <summary>This rank's tensor-parallel rank (<c>get_tensor_parallel_rank</c>).</summary>
    public int GetTensorParallelRank() => Layout.TensorParallelRank;

    /// <summary>This rank's pipeline stage (<c>get_pipeline_parallel_rank</c>).</summary>
    public int GetPipelineParallelRank() => Layout.PipelineParallelRank;

    /// <summary>This rank's data-parallel rank (<c>get_data_parallel_rank</c>).</summary>
    public int GetDataParallelRank() => Layout.DataParallelRank;

    /// <summary>Every rank of the job (the world with an mpu, else the data-parallel group): checkpoints are agreed on and committed over it.</summary>
    internal ProcessGroup JobGroup => Layout.JobGroup!;

    /// <summary>Bytes of parameters, gradients and optimizer state this rank holds between steps.</summary>
    public ModelStateBytes ModelStateBytes() => strategy?.StateBytes() ?? new ModelStateBytes(
        Module.parameters().Sum(p => p.numel() * p.element_size()), 0, 0);

    /// <summary>ZeRO-3 only: the most bytes of partitioned parameters gathered at once on this rank so far.</summary>
    public long? PeakGatheredParameterBytes => strategy?.PeakGatheredParameterBytes;

    /// <summary>Bytes this rank sent through the communication library during the last optimizer step.</summary>
    public long BytesSentLastStep { get; private set; }

    /// <summary>What this rank sent during the last optimizer step, per operation, in all and to other hosts, and during backward.</summary>
    public StepTraffic LastStepTraffic => traffic.Last;

    /// <summary>Optimizer steps taken (including skipped ones), as DeepSpeed's <c>global_steps</c>.</summary>
    public long GlobalSteps { get; private set; }

    /// <summary>Samples consumed: <see cref="TrainBatchSize"/> per optimizer step.</summary>
    public long GlobalSamples { get; private set; }

    /// <summary>Optimizer steps skipped because gradients were not finite.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>Micro-steps taken (calls to <see cref="Step"/>).</summary>
    public long MicroSteps { get; private set; }

    /// <summary>True when the next <see cref="Step"/> ends a gradient-accumulation cycle.</summary>
    public bool IsGradientAccumulationBoundary() => (MicroSteps + 1) % GradientAccumulationSteps == 0;

    /// <summary>Runs the module through <c>call</c> (so forward hooks fire).</summary>
    public Tensor Forward(Tensor input)
    {
        ThrowIfMicroStepApiRefused(nameof(Forward));
        if (Module is not nn.Module<Tensor, Tensor> m)
            throw new InvalidOperationException($"Forward(Tensor) needs a module of type nn.Module<Tensor, Tensor>; {Module.GetType().Name} is not. Use Forward<TIn, TOut>.");
        using var t = Timers.Time(WallClockTimers.Forward);
        strategy?.BeforeForward(IsGradientAccumulationBoundary());
        using var cast = ToModelDType(input);
        var output = m.call(cast);
        timeline?.Record($"micro-step {MicroSteps % GradientAccumulationSteps}: after forward");
        return output;
    }

    /// <summary>A float input in the model's dtype (the engine owns the model's dtype: float inputs follow it); other inputs unchanged.</summary>
    private protected Tensor ToModelDType(Tensor input) =>
        Precision.IsReducedPrecision && input.is_floating_point() && input.dtype != Precision.ModelDType ? input.to(Precision.ModelDType) : input.alias();

    /// <summary>Runs a module with another signature through <c>call</c>.</summary>
    public TOut Forward<TIn, TOut>(TIn input)
    {
        ThrowIfMicroStepApiRefused(nameof(Forward));
        if (Module is not nn.Module<TIn, TOut> m)
            throw new InvalidOperationException($"the module {Module.GetType().Name} is not an nn.Module<{typeof(TIn).Name}, {typeof(TOut).Name}>");
        using var t = Timers.Time(WallClockTimers.Forward);
        strategy?.BeforeForward(IsGradientAccumulationBoundary());
        var output = m.call(input);
        timeline?.Record($"micro-step {MicroSteps % GradientAccumulationSteps}: after forward");
        return output;
    }

    /// <summary>
    /// Back-propagates <paramref name="loss"/> divided by the accumulation steps (DeepSpeed's scale_wrt_gas) and,
    /// with fp16, multiplied by the loss scale; returns the loss divided by the accumulation steps. Gradients
    /// accumulate until the boundary's <see cref="Step"/>.
    /// </summary>
    public Tensor Backward(Tensor loss, bool retainGraph = false, bool scaleWrtGas = true)
    {
        ThrowIfMicroStepApiRefused(nameof(Backward));
        if (loss.numel() != 1) throw new ArgumentException($"Backward needs a scalar loss; got a tensor of shape [{string.Join(", ", loss.shape)}]");
        using var t = Timers.Time(WallClockTimers.Backward);
        RecordLoss(loss.detach().to(ScalarType.Float64).item<double>());
        bool boundary = IsGradientAccumulationBoundary();
        traffic.BeginBackward();
        var scaled = BackwardLoss(loss, retainGraph, scaleWrtGas);
        timeline?.Record($"micro-step {MicroSteps % GradientAccumulationSteps}: after backward");
        FinishMicroBackward(boundary);
        traffic.EndBackward();
        timeline?.Record($"micro-step {MicroSteps % GradientAccumulationSteps}: after reduction");
        return scaled;
    }

    /// <summary>Counts a micro-batch loss in the step's mean loss (monitors, progress).</summary>
    /// <summary>What one recorded loss stands for in the progress line (a pipeline engine records one per batch).</summary>
    private protected string RecordedLossUnit { set => progress.LossUnit = value; }

    private protected void RecordLoss(double lossValue)
    {
        progress.RecordLoss(lossValue);
        stepLossSum += lossValue;
        stepLossCount++;
    }

    /// <summary>Back-propagates <paramref name="loss"/> / gradient_accumulation_steps (× the fp16 loss scale); returns the divided loss.</summary>
    private protected Tensor BackwardLoss(Tensor loss, bool retainGraph = false, bool scaleWrtGas = true)
    {
        var scaled = scaleWrtGas && GradientAccumulationSteps > 1 ? loss / GradientAccumulationSteps : loss.alias();
        using (Timers.Time(WallClockTimers.BackwardInner))
        {
            if (Precision.Scaler is { } scaler)
                using (var forBackward = scaled * scaler.Scale) forBackward.backward(retain_graph: retainGraph);
            else scaled.backward(retain_graph: retainGraph);
        }
        return scaled;
    }

    /// <summary>Ends a micro-batch's backward: surfaces recompute errors, then lets the strategy reduce (at the boundary, or every micro-step for ZeRO-2).</summary>
    private protected void FinishMicroBackward(bool boundary)
    {
        ActivationCheckpointing.ThrowIfBackwardFailed(); // errors inside a checkpoint's recompute surface here
        using (Timers.Time(WallClockTimers.BackwardAllreduce)) strategy?.AfterBackward(boundary);
    }

    /// <summary>True when the strategy takes the gradients out of the parameters after every micro-step (ZeRO-2, fp32 accumulation).</summary>
    private protected bool StrategyDrainsEveryMicroStep => strategy?.DrainsGradientsEveryMicroStep ?? false;

    /// <summary>True when the strategy communicates after every micro-step (ZeRO-2's reduce-scatter).</summary>
    private protected bool StrategyReducesEveryMicroStep => strategy?.ReducesEveryMicroStep ?? false;

    /// <summary>Why <see cref="Forward(Tensor)"/>, <see cref="Backward"/> and <see cref="Step"/> are not available on this
    /// engine (a pipeline engine runs whole batches), or null.</summary>
    private protected virtual string? MicroStepApiRefusal => null;

    private void ThrowIfMicroStepApiRefused(string method)
    {
        if (MicroStepApiRefusal is { } why) throw new InvalidOperationException($"{method}() {why}");
    }

    /// <summary>
    /// Ends a micro-step. At the accumulation boundary: clips gradients by global norm (gradient_clipping),
    /// steps the optimizer (skipped when the gradients are not finite), steps the scheduler, zeroes the gradients
    /// and advances <see cref="GlobalSteps"/> and <see cref="GlobalSamples"/>.
    /// </summary>
    public void Step()
    {
        ThrowIfMicroStepApiRefused(nameof(Step));
        stepApplied = false;
        if (IsGradientAccumulationBoundary()) BoundaryStep();
        MicroSteps++;
    }

    /// <summary>The optimizer step at the accumulation boundary, with its bookkeeping (steps, samples, progress, monitors).</summary>
    private protected void BoundaryStep()
    {
        ApplyBoundaryStep();
        FinishBoundaryStep();
    }

    /// <summary>The optimizer step itself (<see cref="BoundaryStep"/> without its bookkeeping).</summary>
    private protected void ApplyBoundaryStep()
    {
        stepApplied = false;
        if (strategy == null) throw new InvalidOperationException("training needs an optimizer: " + OptimizerChoice.HowToGiveOne);
        using var t = Timers.Time(WallClockTimers.Step);
        timeline?.Record("before optimizer step");
        TakeModelStep(strategy);
        timeline?.Record("after optimizer step");
    }

    /// <summary>The bookkeeping after <see cref="ApplyBoundaryStep"/>: steps, samples, bytes, progress, monitors.</summary>
    private protected void FinishBoundaryStep()
    {
        long sent = Dist.Logger.BytesSent;
        BytesSentLastStep = sent - bytesSentAtLastStep;
        bytesSentAtLastStep = sent;
        traffic.EndStep();
        GlobalSteps++;
        GlobalSamples += TrainBatchSize;
        if (GlobalSteps == 1) ActivationCheckpointing.WarnIfConfiguredButUnused(Config);
        progress.AfterStep(GlobalSteps, SkippedSteps, GlobalSamples, GetLr(), Timers);
        timeline?.AfterStep(GlobalSteps);
        RaiseStepCompleted();
    }

    /// <summary>Advances the micro-step count by a pipeline batch's micro-batches.</summary>
    private protected void AddMicroSteps(int count) => MicroSteps += count;

    private void TakeModelStep(ITrainingStrategy training)
    {
        double scale = Precision.LossScale;
        var result = training.Step(Config.GradientClipping, scale, Precision.CheckOverflow);
        lastGradNorm = result.Norm;
        stepApplied = result.Applied;
        Precision.Scaler?.Update(result.Overflow);
        if (!result.Applied)
        {
            SkippedSteps++;
            Utils.Log.Info($"OVERFLOW! Skipping step {GlobalSteps + 1}: gradients are not finite" +
                           (Precision.Scaler is { Dynamic: true } s ? $"; loss scale {scale} → {s.Scale}" : ""));
        }
        else
        {
            LrScheduler?.Step(); // as DeepSpeed: a skipped step does not advance the schedule
        }
        training.ZeroGrad();
    }

    /// <summary>Raised on every rank after each optimizer step (monitors write only on rank 0).</summary>
    public event Action<StepMetrics>? StepCompleted;

    private void RaiseStepCompleted()
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        var metrics = new StepMetrics(GlobalSteps, GlobalSamples, SkippedSteps,
            stepLossCount > 0 ? stepLossSum / stepLossCount : double.NaN, GetLr(), lastGradNorm ?? double.NaN,
            stepApplied, BytesSentLastStep, (now - lastStepTimestamp) / (double)System.Diagnostics.Stopwatch.Frequency);
        lastStepTimestamp = now;
        stepLossSum = 0;
        stepLossCount = 0;
        StepCompleted?.Invoke(metrics);
    }

    /// <summary>True when the last <see cref="Step"/> applied an optimizer update.</summary>
    public bool WasStepApplied() => stepApplied;

    /// <summary>The global L2 norm of the gradients at the last optimizer step (before clipping).</summary>
    public double? GetGlobalGradNorm() => lastGradNorm;

    /// <summary>Clears the gradients of every parameter.</summary>
    public void ZeroGrad()
    {
        if (strategy != null) strategy.ZeroGrad();
        else Module.zero_grad();
    }

    /// <summary>The learning rate of each parameter group.</summary>
    public IReadOnlyList<double> GetLr() =>
        Optimizer == null ? Array.Empty<double>() : Optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();

    /// <summary>Puts the module in training mode.</summary>
    public void Train() => Module.train();

    /// <summary>Puts the module in evaluation mode.</summary>
    public void Eval() => Module.eval();

    /// <summary>Releases what the engine owns (not the user's module or optimizer).</summary>
    public virtual void Dispose()
    {
        strategy?.Dispose();
        Layout.Dispose();
        ActivationCheckpointer.Release(ActivationCheckpointing);
    }
}
