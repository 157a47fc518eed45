using System.Diagnostics;
using System.Text.Json;
using DeepSpeedSharp.Engine;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>What the samples' step loop is told by their command line.</summary>
/// <param name="Steps"><c>--steps N</c>: optimizer steps in total (a resumed run continues up to it).</param>
/// <param name="LossLog"><c>--loss-log FILE</c>, or null.</param>
/// <param name="Resume"><c>--resume DIR</c>, or null.</param>
/// <param name="SaveDir"><c>--save-dir DIR</c>, or null.</param>
/// <param name="SaveEvery"><c>--save-every K</c> (0: only at the end).</param>
public sealed record SampleLoopSettings(int Steps, string? LossLog, string? Resume, string? SaveDir, int SaveEvery);

/// <summary>What the step loop measured.</summary>
/// <param name="StepTimes">Seconds of every step this run took.</param>
/// <param name="LastLoss">The last step's loss (NaN without any step).</param>
public sealed record SampleLoopResult(IReadOnlyList<double> StepTimes, double LastLoss);

/// <summary>
/// The samples' step loop around their own train step: resume from a checkpoint (<see cref="SampleCheckpoints"/>),
/// then for every step time it, show rank 0's progress line, write rank 0's <c>--loss-log</c> line
/// <c>{step, loss, lr, grad_norm}</c> and save checkpoints when due; save at the end.
/// </summary>
public static class SampleTrainingLoop
{
    /// <summary>Trains from the resumed step (or 0) up to <see cref="SampleLoopSettings.Steps"/>.</summary>
    /// <param name="name">The sample's name, prefixed to its messages.</param>
    /// <param name="engine">The engine (put in training mode here).</param>
    /// <param name="tokensPerStep">Tokens of one global batch, for the progress line's tokens/s.</param>
    /// <param name="settings">Steps, loss log and checkpoint options.</param>
    /// <param name="trainStep">One optimizer step (0-based); returns the step's loss over the global batch.</param>
    public static SampleLoopResult Run(string name, DeepSpeedEngine engine, long tokensPerStep, SampleLoopSettings settings, Func<long, double> trainStep)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(trainStep);
        bool rank0 = engine.GlobalRank == 0;
        // AutoFlush: one line per step reaches the file at once, so a killed run keeps its log up to the last step.
        using var lossLog = settings.LossLog != null && rank0 ? new StreamWriter(settings.LossLog) { AutoFlush = true } : null;
        var stepTimes = new List<double>();
        var checkpoints = new SampleCheckpoints(name, settings.Resume, settings.SaveDir, settings.SaveEvery, engine);
        double lastLoss = double.NaN;
        using var display = rank0 ? Monitoring.TrainingProgressDisplay.Start(settings.Steps, tokensPerStep) : null;
        engine.Train();
        for (long step = checkpoints.Resume(); step < settings.Steps; step++)
        {
            var clock = Stopwatch.StartNew();
            double stepLoss = lastLoss = trainStep(step);
            stepTimes.Add(clock.Elapsed.TotalSeconds);
            double lr = engine.GetLr().FirstOrDefault();
            if (rank0)
            {
                display!.Update(step + 1, stepLoss, lr);
                lossLog?.WriteLine(JsonSerializer.Serialize(new { step = step + 1, loss = stepLoss, lr, grad_norm = SampleReport.LoggedGradNorm(engine) }));
            }
            checkpoints.AfterStep(step + 1);
        }
        checkpoints.AtEnd();
        return new SampleLoopResult(stepTimes, lastLoss);
    }

    /// <summary>
    /// One optimizer step without pipeline parallelism: for each of the gradient_accumulation_steps micro-steps of this
    /// data-parallel rank (each in its own dispose scope), the loss, <c>engine.Backward(loss)</c> and <c>engine.Step()</c>.
    /// Returns the loss averaged over the global batch: every micro-step and every data-parallel rank.
    /// </summary>
    /// <param name="engine">The engine.</param>
    /// <param name="microStepLoss">The scalar loss of a micro-step (its index in the step), computed through <c>engine.Forward</c>.</param>
    public static double AccumulatedStep(DeepSpeedEngine engine, Func<int, TorchSharp.torch.Tensor> microStepLoss)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(microStepLoss);
        int gas = engine.GradientAccumulationSteps;
        double lossSum = 0;
        for (int micro = 0; micro < gas; micro++)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var loss = microStepLoss(micro);
            lossSum += loss.item<float>();
            engine.Backward(loss);
            engine.Step();
        }
        return SampleReport.MeanOverDataParallelRanks(engine, lossSum / gas);
    }
}
