using DeepSpeedSharp.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

public sealed partial class PipelineEngine
{
    /// <summary>
    /// One execution of a schedule on this stage: the instruction interpreter (DeepSpeed's <c>_exec_schedule</c> and
    /// <c>_INSTRUCTION_MAP</c>). Each buffer holds one micro-batch's input, output, labels and gradients while it is in
    /// flight; a buffer's tensors are released as soon as the schedule is done with them.
    /// </summary>
    private sealed class ScheduleRun
    {
        private readonly PipelineEngine e;
        private readonly PipeSchedule schedule;
        private readonly bool training, computeLoss, keepOutputs;
        private readonly Tensor?[] inputs, outputs, labels, outputGrads, inputGrads;
        private int backwardPasses;
        private double lossSum;
        private readonly System.Diagnostics.Stopwatch wall = new(), compute = new();
        private TimeSpan scheduleTime;

        public ScheduleRun(PipelineEngine engine, PipeSchedule schedule, bool training, bool computeLoss, bool keepOutputs)
        {
            e = engine;
            this.schedule = schedule;
            this.training = training;
            this.computeLoss = computeLoss;
            this.keepOutputs = keepOutputs;
            int n = schedule.NumPipeBuffers();
            inputs = new Tensor?[n];
            outputs = new Tensor?[n];
            labels = new Tensor?[n];
            outputGrads = new Tensor?[n];
            inputGrads = new Tensor?[n];
        }

        /// <summary>The training loss averaged over micro-batches and data-parallel replicas (set by the optimizer step).</summary>
        public double AggregatedLoss { get; private set; } = double.NaN;

        /// <summary>Per-micro-batch losses computed on the last stage.</summary>
        public List<double> MicroBatchLosses { get; } = new();

        /// <summary>Last stage, when keeping outputs: each micro-batch's output, detached.</summary>
        public List<Tensor> Outputs { get; } = new();

        /// <summary>Where this stage's time went in the schedule (up to the optimizer step).</summary>
        public PipelineBatchTimings Timings => new(scheduleTime.TotalSeconds, compute.Elapsed.TotalSeconds, schedule.MicroBatches, schedule.Stages);

        public void Execute()
        {
            using var noGrad = training ? null : no_grad();
            wall.Start();
            try
            {
                foreach (var step in schedule.Steps())
                    foreach (var instruction in step)
                    {
                        if (instruction is Pipeline.OptimizerStep) scheduleTime = wall.Elapsed;
                        Exec(instruction);
                    }
                if (scheduleTime == TimeSpan.Zero) scheduleTime = wall.Elapsed;
            }
            finally
            {
                e.channel.WaitForSends();
                foreach (var buffer in new[] { inputs, outputs, labels, outputGrads, inputGrads })
                    for (int i = 0; i < buffer.Length; i++) Release(ref buffer[i]);
            }
        }

        private void Exec(PipeInstruction instruction)
        {
            using var scope = NewDisposeScope();
            switch (instruction)
            {
                case LoadMicroBatch load: Load(load.BufferId); break;
                case ForwardPass f: Forward(f.BufferId); break;
                case BackwardPass b: Backward(b.BufferId); break;
                case SendActivation s: e.channel.SendActivation(outputs[s.BufferId] ?? throw Missing(s, "output")); break;
                case RecvActivation r: Set(ref inputs[r.BufferId], ReceivedActivation()); break;
                case SendGrad s:
                    e.channel.SendGrad(inputGrads[s.BufferId] ?? throw Missing(s, "input gradient"));
                    Release(ref inputGrads[s.BufferId]);
                    break;
                case RecvGrad r: Set(ref outputGrads[r.BufferId], e.channel.RecvGrad()); break;
                case ReduceTiedGrads: e.pipe.Tied.ReduceGradients(); break;
                case ReduceGrads: e.FinishMicroBackward(boundary: true); break;
                case Pipeline.OptimizerStep: TakeOptimizerStep(); break;
                default: throw new NotSupportedException($"the pipeline engine has no implementation of the instruction {instruction}");
            }
        }

        private void Load(int buffer)
        {
            var (x, y) = e.NextMicroBatch();
            if (e.IsFirstStage()) Set(ref inputs[buffer], e.ToModelDType(x));
            if (e.IsLastStage()) Set(ref labels[buffer], y.alias());
        }

        private Tensor ReceivedActivation()
        {
            var x = e.channel.RecvActivation();
            if (training)
            {
                if (!x.is_floating_point())
                    throw new InvalidOperationException($"stage {e.StageId} received a {x.dtype} activation: the tensor passed between pipeline stages " +
                                                        "must be floating point, so that its gradient can flow back");
                x.requires_grad_(true);
            }
            return x;
        }

        private void Forward(int buffer)
        {
            using var timer = e.Timers.Time(WallClockTimers.Forward);
            var x = inputs[buffer] ?? throw Missing(new ForwardPass(buffer), "input");
            compute.Start();
            var y = e.pipe.call(x);
            compute.Stop();
            if (!e.IsLastStage())
            {
                Set(ref outputs[buffer], y);
                return;
            }
            if (keepOutputs) Outputs.Add(y.detach().DetachFromDisposeScope());
            if (!computeLoss)
            {
                Set(ref outputs[buffer], y);
                return;
            }
            compute.Start();
            var loss = e.pipe.LossFn!(y, labels[buffer] ?? throw Missing(new ForwardPass(buffer), "labels"));
            compute.Stop();
            if (loss.numel() != 1) throw new InvalidOperationException($"the pipeline's loss function returned a tensor of shape [{string.Join(", ", loss.shape)}]; it must return a scalar");
            double value = loss.detach().to(ScalarType.Float64).item<double>();
            MicroBatchLosses.Add(value);
            lossSum += value;
            Set(ref outputs[buffer], loss);
        }

        private void Backward(int buffer)
        {
            using (e.Timers.Time(WallClockTimers.Backward))
            {
                var output = outputs[buffer] ?? throw Missing(new BackwardPass(buffer), "output");
                var outputGrad = e.IsLastStage() ? null : outputGrads[buffer] ?? throw Missing(new BackwardPass(buffer), "output gradient");
                compute.Start();
                if (outputGrad is null) e.BackwardLoss(output);
                else torch.autograd.backward([output], [outputGrad]);
                compute.Stop();
                if (!e.IsFirstStage() && inputs[buffer] is { } input)
                    Set(ref inputGrads[buffer], input.grad?.detach() ?? zeros_like(input));
                Release(ref outputs[buffer]);
                Release(ref outputGrads[buffer]);
                Release(ref inputs[buffer]);
                Release(ref labels[buffer]);
            }
            // At the last micro-batch the schedule's ReduceTiedGrads and ReduceGrads follow; before it, a strategy that takes
            // the gradients out of the parameters every micro-step must not see the tied gradients before they are summed.
            if (++backwardPasses == schedule.MicroBatches) return;
            if (e.StrategyDrainsEveryMicroStep) e.pipe.Tied.StashGradients();
            e.FinishMicroBackward(boundary: false);
        }

        private void TakeOptimizerStep()
        {
            var (dpLoss, aggregated) = e.AggregateLoss(lossSum, schedule.MicroBatches);
            e.DataParallelGroupLoss = dpLoss;
            AggregatedLoss = aggregated;
            e.RecordLoss(aggregated);
            e.BoundaryStep();
            e.AddMicroSteps(schedule.MicroBatches);
        }

        private static void Set(ref Tensor? slot, Tensor value)
        {
            slot?.Dispose();
            slot = value.DetachFromDisposeScope();
        }

        private static void Release(ref Tensor? slot)
        {
            slot?.Dispose();
            slot = null;
        }

        private InvalidOperationException Missing(PipeInstruction instruction, string what) =>
            new($"pipeline schedule error on stage {e.StageId}: {instruction} found no {what} in its buffer");
    }

    /// <summary>
    /// DeepSpeed's <c>_aggregate_total_loss</c>: the last stage's mean over micro-batches, then its mean over the
    /// data-parallel replicas, both broadcast to every stage of the pipeline.
    /// </summary>
    private (double DataParallelGroupLoss, double Aggregated) AggregateLoss(double lossSum, int microBatches)
    {
        double[] values = [0, 0];
        if (IsLastStage())
        {
            double mean = lossSum / microBatches;
            values = [mean, MeanOverDataParallel(mean)];
        }
        values = BroadcastFromLastStage(values);
        return (values[0], values[1]);
    }
}
