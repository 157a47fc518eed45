using DeepSpeedSharp.Comm;
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
        private readonly int buffers;
        private int backwardPasses;
        private double lossSum;
        private readonly System.Diagnostics.Stopwatch wall = new(), compute = new(), receive = new();
        private TimeSpan scheduleTime;
        private double pipelineSeconds;

        public ScheduleRun(PipelineEngine engine, PipeSchedule schedule, bool training, bool computeLoss, bool keepOutputs)
        {
            e = engine;
            this.schedule = schedule;
            this.training = training;
            this.computeLoss = computeLoss;
            this.keepOutputs = keepOutputs;
            buffers = schedule.NumPipeBuffers();
            int n = buffers * schedule.Chunks; // one slot per buffer of each chunk
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
        public PipelineBatchTimings Timings => new(scheduleTime.TotalSeconds, compute.Elapsed.TotalSeconds, schedule.MicroBatches, schedule.Stages, schedule.Chunks,
            pipelineSeconds, receive.Elapsed.TotalSeconds);

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
                case LoadMicroBatch load: Load(load); break;
                case ForwardPass f: Forward(f); break;
                case BackwardPass b: Backward(b); break;
                case SendActivation s: e.channel.SendActivation(outputs[Slot(s)] ?? throw Missing(s, "output"), Part(s) + 1); break;
                case RecvActivation r: Set(ref inputs[Slot(r)], Timed(receive, () => ReceivedActivation(Part(r)))); break;
                case SendGrad s:
                    e.channel.SendGrad(inputGrads[Slot(s)] ?? throw Missing(s, "input gradient"), Part(s));
                    Release(ref inputGrads[Slot(s)]);
                    break;
                case RecvGrad r: Set(ref outputGrads[Slot(r)], Timed(receive, () => e.channel.RecvGrad(Part(r) + 1))); break;
                case ReduceTiedGrads: e.pipe.Tied.ReduceGradients(); break;
                case ReduceGrads: e.FinishMicroBackward(boundary: true); break;
                case Pipeline.OptimizerStep: TakeOptimizerStep(); break;
                default: throw new NotSupportedException($"the pipeline engine has no implementation of the instruction {instruction}");
            }
        }

        /// <summary>The buffer slot of an instruction: one per buffer of each chunk.</summary>
        private int Slot(BufferOpInstruction i) => i.Chunk * buffers + i.BufferId;

        /// <summary>The model part an instruction's chunk is: chunk × stages + stage.</summary>
        private int Part(BufferOpInstruction i) => i.Chunk * e.NumStages + e.StageId;

        private bool IsFirstPart(int chunk) => schedule.IsFirstPart(chunk);

        private bool IsLastPart(int chunk) => schedule.IsLastPart(chunk);

        private void Load(LoadMicroBatch load)
        {
            var (x, y) = e.NextMicroBatch();
            if (IsFirstPart(load.Chunk)) Set(ref inputs[Slot(load)], e.ToModelDType(x));
            if (IsLastPart(load.Chunk)) Set(ref labels[Slot(load)], y.alias());
        }

        private Tensor ReceivedActivation(int part)
        {
            var x = e.channel.RecvActivation(part);
            if (training)
            {
                if (!x.is_floating_point())
                    throw new InvalidOperationException($"stage {e.StageId} received a {x.dtype} activation: the tensor passed between pipeline stages " +
                                                        "must be floating point, so that its gradient can flow back");
                x.requires_grad_(true);
            }
            return x;
        }

        private void Forward(ForwardPass f)
        {
            using var timer = e.Timers.Time(WallClockTimers.Forward);
            int buffer = Slot(f);
            var x = inputs[buffer] ?? throw Missing(f, "input");
            compute.Start();
            e.pipe.ActiveChunk = f.Chunk;
            var y = e.pipe.call(x);
            compute.Stop();
            if (!IsLastPart(f.Chunk))
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
            var loss = e.pipe.LossFn!(y, labels[buffer] ?? throw Missing(f, "labels"));
            compute.Stop();
            if (loss.numel() != 1) throw new InvalidOperationException($"the pipeline's loss function returned a tensor of shape [{string.Join(", ", loss.shape)}]; it must return a scalar");
            double value = loss.detach().to(ScalarType.Float64).item<double>();
            MicroBatchLosses.Add(value);
            lossSum += value;
            Set(ref outputs[buffer], loss);
        }

        private void Backward(BackwardPass b)
        {
            using (e.Timers.Time(WallClockTimers.Backward))
            {
                int buffer = Slot(b);
                var output = outputs[buffer] ?? throw Missing(b, "output");
                var outputGrad = IsLastPart(b.Chunk) ? null : outputGrads[buffer] ?? throw Missing(b, "output gradient");
                compute.Start();
                if (outputGrad is null) e.BackwardLoss(output);
                else torch.autograd.backward([output], [outputGrad]);
                compute.Stop();
                if (!IsFirstPart(b.Chunk) && inputs[buffer] is { } input)
                    Set(ref inputGrads[buffer], input.grad?.detach() ?? zeros_like(input));
                Release(ref outputs[buffer]);
                Release(ref outputGrads[buffer]);
                Release(ref inputs[buffer]);
                Release(ref labels[buffer]);
            }
            // At the last micro-batch the schedule's ReduceTiedGrads and ReduceGrads follow; before it, a strategy that takes
            // the gradients out of the parameters every micro-step must not see the tied gradients before they are summed.
            if (++backwardPasses == schedule.Passes) return;
            // With virtual stages, messages wrap around from the last stage to the first, so a stage may wait for a neighbour
            // that is itself inside a collective with its data-parallel peers: ZeRO-2's reduce-scatter after every backward
            // pass could deadlock. It then reduces once, at the end of the batch (the gradients accumulate until then).
            if (schedule.Chunks > 1 && e.StrategyReducesEveryMicroStep) return;
            if (e.StrategyDrainsEveryMicroStep) e.pipe.Tied.StashGradients();
            e.FinishMicroBackward(boundary: false);
        }

        /// <summary>
        /// The optimizer step, then (as in DeepSpeed, whose <c>train_batch</c> aggregates the loss after the schedule) the
        /// loss aggregation: every stage leaves the aggregation's collective together, after all stages stepped, so the
        /// next batch starts at the same time on every stage. (Aggregating first, a stage whose step was shorter started
        /// early and spent the difference waiting inside its next schedule, as bubble.)
        /// </summary>
        private void TakeOptimizerStep()
        {
            e.ApplyBoundaryStep();
            var (dpLoss, aggregated, longest) = e.AggregateLoss(lossSum, schedule.MicroBatches, scheduleTime.TotalSeconds);
            pipelineSeconds = longest;
            e.DataParallelGroupLoss = dpLoss;
            AggregatedLoss = aggregated;
            e.RecordLoss(aggregated);
            e.FinishBoundaryStep();
            e.AddMicroSteps(schedule.MicroBatches);
        }

        private static Tensor Timed(System.Diagnostics.Stopwatch clock, Func<Tensor> work)
        {
            clock.Start();
            try { return work(); }
            finally { clock.Stop(); }
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
    /// data-parallel replicas, given to every stage of the pipeline — in the same single collective as the longest
    /// schedule time of the stages (the pipeline's flush time): one max-all-reduce over the pipe group, to which the other
    /// stages contribute −∞ for the losses.
    /// </summary>
    private (double DataParallelGroupLoss, double Aggregated, double LongestScheduleSeconds) AggregateLoss(double lossSum, int microBatches, double scheduleSeconds)
    {
        double[] values = [double.NegativeInfinity, double.NegativeInfinity, scheduleSeconds];
        if (IsLastStage())
        {
            double mean = lossSum / microBatches;
            values[0] = mean;
            values[1] = MeanOverDataParallel(mean);
        }
        var group = pipe.Grid.GetPipelineModelParallelGroup()!;
        if (group.Size > 1)
        {
            using var t = tensor(values, ScalarType.Float64);
            group.AllReduce(t, ReduceOp.Max);
            values = t.data<double>().ToArray();
        }
        return (values[0], values[1], values[2]);
    }
}
