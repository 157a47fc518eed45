namespace DeepSpeedSharp.Engine;

/// <summary>What the engine knows after an optimizer step; passed to <see cref="DeepSpeedEngine.StepCompleted"/> listeners (monitors, progress displays).</summary>
/// <param name="GlobalSteps">Optimizer steps taken so far (this one included).</param>
/// <param name="GlobalSamples">Samples consumed so far.</param>
/// <param name="SkippedSteps">Steps skipped so far because gradients were not finite.</param>
/// <param name="Loss">Mean of the losses passed to Backward during this step on this rank (NaN when none).</param>
/// <param name="LearningRates">Learning rate of each parameter group after the scheduler stepped.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Applied">Whether the optimizer applied the update.</param>
/// <param name="BytesSent">Bytes this rank sent through the communication library during the step.</param>
/// <param name="StepSeconds">Wall time since the previous step ended (or since the engine was built).</param>
public sealed record StepMetrics(long GlobalSteps, long GlobalSamples, long SkippedSteps, double Loss,
    IReadOnlyList<double> LearningRates, double GradNorm, bool Applied, long BytesSent, double StepSeconds);
