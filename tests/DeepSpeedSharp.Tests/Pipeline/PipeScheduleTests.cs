using DeepSpeedSharp.Pipeline;

namespace DeepSpeedSharp.Tests.Pipeline;

/// <summary>
/// The pipeline schedules as data: the 1F1B train schedule and the inference schedule print exactly the instruction
/// streams DeepSpeed's <c>schedule.py</c> generates (expected strings produced by its algorithm), and for many shapes
/// every micro-batch runs forward then backward once per stage and every send meets a receive on the neighbouring
/// stage in the same step.
/// </summary>
public class PipeScheduleTests
{
    public static TheoryData<string, int, int, int, string> DeepSpeedStreams => new()
    {
        { "Train", 4, 2, 0, "step 0: LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 1: SendActivation(buffer_id=0)\nstep 2: LoadMicroBatch(buffer_id=1), ForwardPass(buffer_id=1)\nstep 3: SendActivation(buffer_id=1), RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 4: LoadMicroBatch(buffer_id=2), ForwardPass(buffer_id=2)\nstep 5: SendActivation(buffer_id=2), RecvGrad(buffer_id=1), BackwardPass(buffer_id=1)\nstep 6: LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 7: SendActivation(buffer_id=0), RecvGrad(buffer_id=2), BackwardPass(buffer_id=2)\nstep 8: \nstep 9: RecvGrad(buffer_id=0), BackwardPass(buffer_id=0), ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Train", 4, 2, 1, "step 0: \nstep 1: RecvActivation(buffer_id=0), LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 2: BackwardPass(buffer_id=0)\nstep 3: RecvActivation(buffer_id=1), SendGrad(buffer_id=0), LoadMicroBatch(buffer_id=1), ForwardPass(buffer_id=1)\nstep 4: BackwardPass(buffer_id=1)\nstep 5: RecvActivation(buffer_id=0), SendGrad(buffer_id=1), LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 6: BackwardPass(buffer_id=0)\nstep 7: RecvActivation(buffer_id=1), SendGrad(buffer_id=0), LoadMicroBatch(buffer_id=1), ForwardPass(buffer_id=1)\nstep 8: BackwardPass(buffer_id=1)\nstep 9: SendGrad(buffer_id=1), ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Train", 5, 4, 0, "step 0: LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 1: SendActivation(buffer_id=0)\nstep 2: LoadMicroBatch(buffer_id=1), ForwardPass(buffer_id=1)\nstep 3: SendActivation(buffer_id=1)\nstep 4: LoadMicroBatch(buffer_id=2), ForwardPass(buffer_id=2)\nstep 5: SendActivation(buffer_id=2)\nstep 6: LoadMicroBatch(buffer_id=3), ForwardPass(buffer_id=3)\nstep 7: SendActivation(buffer_id=3), RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 8: LoadMicroBatch(buffer_id=4), ForwardPass(buffer_id=4)\nstep 9: SendActivation(buffer_id=4), RecvGrad(buffer_id=1), BackwardPass(buffer_id=1)\nstep 10: \nstep 11: RecvGrad(buffer_id=2), BackwardPass(buffer_id=2)\nstep 12: \nstep 13: RecvGrad(buffer_id=3), BackwardPass(buffer_id=3)\nstep 14: \nstep 15: RecvGrad(buffer_id=4), BackwardPass(buffer_id=4), ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Train", 5, 4, 1, "step 0: \nstep 1: RecvActivation(buffer_id=0), ForwardPass(buffer_id=0)\nstep 2: SendActivation(buffer_id=0)\nstep 3: RecvActivation(buffer_id=1), ForwardPass(buffer_id=1)\nstep 4: SendActivation(buffer_id=1)\nstep 5: RecvActivation(buffer_id=2), ForwardPass(buffer_id=2)\nstep 6: SendActivation(buffer_id=2), RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 7: RecvActivation(buffer_id=3), SendGrad(buffer_id=0), ForwardPass(buffer_id=3)\nstep 8: SendActivation(buffer_id=3), RecvGrad(buffer_id=1), BackwardPass(buffer_id=1)\nstep 9: RecvActivation(buffer_id=0), SendGrad(buffer_id=1), ForwardPass(buffer_id=0)\nstep 10: SendActivation(buffer_id=0), RecvGrad(buffer_id=2), BackwardPass(buffer_id=2)\nstep 11: SendGrad(buffer_id=2)\nstep 12: RecvGrad(buffer_id=3), BackwardPass(buffer_id=3)\nstep 13: SendGrad(buffer_id=3)\nstep 14: RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 15: SendGrad(buffer_id=0), ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Train", 5, 4, 2, "step 0: \nstep 1: \nstep 2: RecvActivation(buffer_id=0), ForwardPass(buffer_id=0)\nstep 3: SendActivation(buffer_id=0)\nstep 4: RecvActivation(buffer_id=1), ForwardPass(buffer_id=1)\nstep 5: SendActivation(buffer_id=1), RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 6: RecvActivation(buffer_id=2), SendGrad(buffer_id=0), ForwardPass(buffer_id=2)\nstep 7: SendActivation(buffer_id=2), RecvGrad(buffer_id=1), BackwardPass(buffer_id=1)\nstep 8: RecvActivation(buffer_id=0), SendGrad(buffer_id=1), ForwardPass(buffer_id=0)\nstep 9: SendActivation(buffer_id=0), RecvGrad(buffer_id=2), BackwardPass(buffer_id=2)\nstep 10: RecvActivation(buffer_id=1), SendGrad(buffer_id=2), ForwardPass(buffer_id=1)\nstep 11: SendActivation(buffer_id=1), RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 12: SendGrad(buffer_id=0)\nstep 13: RecvGrad(buffer_id=1), BackwardPass(buffer_id=1)\nstep 14: SendGrad(buffer_id=1)\nstep 15: ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Train", 5, 4, 3, "step 0: \nstep 1: \nstep 2: \nstep 3: RecvActivation(buffer_id=0), LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 4: BackwardPass(buffer_id=0)\nstep 5: RecvActivation(buffer_id=1), SendGrad(buffer_id=0), LoadMicroBatch(buffer_id=1), ForwardPass(buffer_id=1)\nstep 6: BackwardPass(buffer_id=1)\nstep 7: RecvActivation(buffer_id=0), SendGrad(buffer_id=1), LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 8: BackwardPass(buffer_id=0)\nstep 9: RecvActivation(buffer_id=1), SendGrad(buffer_id=0), LoadMicroBatch(buffer_id=1), ForwardPass(buffer_id=1)\nstep 10: BackwardPass(buffer_id=1)\nstep 11: RecvActivation(buffer_id=0), SendGrad(buffer_id=1), LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 12: BackwardPass(buffer_id=0)\nstep 13: SendGrad(buffer_id=0)\nstep 14: \nstep 15: ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Train", 2, 3, 1, "step 0: \nstep 1: RecvActivation(buffer_id=0), ForwardPass(buffer_id=0)\nstep 2: SendActivation(buffer_id=0)\nstep 3: RecvActivation(buffer_id=1), ForwardPass(buffer_id=1)\nstep 4: SendActivation(buffer_id=1), RecvGrad(buffer_id=0), BackwardPass(buffer_id=0)\nstep 5: SendGrad(buffer_id=0)\nstep 6: RecvGrad(buffer_id=1), BackwardPass(buffer_id=1)\nstep 7: SendGrad(buffer_id=1), ReduceTiedGrads(), ReduceGrads(), OptimizerStep()" },
        { "Inference", 3, 3, 0, "step 0: LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0)\nstep 1: LoadMicroBatch(buffer_id=1), SendActivation(buffer_id=0), ForwardPass(buffer_id=1)\nstep 2: LoadMicroBatch(buffer_id=0), SendActivation(buffer_id=1), ForwardPass(buffer_id=0)\nstep 3: SendActivation(buffer_id=0)\nstep 4: " },
        { "Inference", 3, 3, 1, "step 0: \nstep 1: RecvActivation(buffer_id=0), ForwardPass(buffer_id=0)\nstep 2: RecvActivation(buffer_id=1), SendActivation(buffer_id=0), ForwardPass(buffer_id=1)\nstep 3: RecvActivation(buffer_id=0), SendActivation(buffer_id=1), ForwardPass(buffer_id=0)\nstep 4: SendActivation(buffer_id=0)" },
        { "Inference", 3, 3, 2, "step 0: \nstep 1: \nstep 2: LoadMicroBatch(buffer_id=0), RecvActivation(buffer_id=0), ForwardPass(buffer_id=0)\nstep 3: LoadMicroBatch(buffer_id=1), RecvActivation(buffer_id=1), ForwardPass(buffer_id=1)\nstep 4: LoadMicroBatch(buffer_id=0), RecvActivation(buffer_id=0), ForwardPass(buffer_id=0)" },
    };

    [Theory]
    [MemberData(nameof(DeepSpeedStreams))]
    public void SchedulesPrintDeepSpeedsInstructionStreams(string kind, int microBatches, int stages, int stageId, string expected)
    {
        PipeSchedule schedule = kind == "Train" ? new TrainSchedule(microBatches, stages, stageId) : new InferenceSchedule(microBatches, stages, stageId);
        Assert.Equal(expected, schedule.ToString());
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 4)]
    [InlineData(3, 2)]
    [InlineData(8, 2)]
    [InlineData(8, 4)]
    [InlineData(2, 5)]
    [InlineData(16, 3)]
    public void EveryMicroBatchRunsOnceAndEverySendMeetsAReceive(int microBatches, int stages)
    {
        var perStage = Enumerable.Range(0, stages).Select(s => new TrainSchedule(microBatches, stages, s).Steps().ToList()).ToList();
        int steps = perStage[0].Count;
        Assert.All(perStage, p => Assert.Equal(2 * (microBatches + stages - 1), p.Count));
        for (int s = 0; s < stages; s++)
        {
            var all = perStage[s].SelectMany(c => c).ToList();
            Assert.Equal(microBatches, all.OfType<ForwardPass>().Count());
            Assert.Equal(microBatches, all.OfType<BackwardPass>().Count());
            Assert.Equal(s == 0 || s == stages - 1 ? microBatches : 0, all.OfType<LoadMicroBatch>().Count());
            Assert.IsType<OptimizerStep>(perStage[s][^1][^1]);
            // 1F1B: the i-th backward comes after the i-th forward, and no more than (stages - s) forwards are in flight.
            int inFlight = 0, maxInFlight = 0;
            foreach (var cmd in all)
            {
                if (cmd is ForwardPass) maxInFlight = Math.Max(maxInFlight, ++inFlight);
                if (cmd is BackwardPass) Assert.True(--inFlight >= 0, $"stage {s}: a backward before its forward");
            }
            Assert.True(maxInFlight <= Math.Min(stages - s, microBatches), $"stage {s}: {maxInFlight} micro-batches in flight");
            Assert.True(maxInFlight <= new TrainSchedule(microBatches, stages, s).NumPipeBuffers());
        }
        for (int step = 0; step < steps; step++)
            for (int s = 0; s + 1 < stages; s++)
            {
                var here = perStage[s][step];
                var next = perStage[s + 1][step];
                Assert.Equal(here.OfType<SendActivation>().Count(), next.OfType<RecvActivation>().Count());
                Assert.Equal(next.OfType<SendGrad>().Count(), here.OfType<RecvGrad>().Count());
            }
    }

    [Fact]
    public void DataParallelScheduleAccumulatesThenSteps()
    {
        var steps = new DataParallelSchedule(3, 1, 0).Steps().ToList();
        Assert.Equal(3, steps.Count);
        Assert.Equal("LoadMicroBatch(buffer_id=0), ForwardPass(buffer_id=0), BackwardPass(buffer_id=0), ReduceGrads(), OptimizerStep()", string.Join(", ", steps[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainSchedule(4, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainSchedule(0, 2, 0));
    }

    [Fact]
    public void TheBubbleSplitsIntoIdleTimeAndTheStagesOwnWork()
    {
        // A stage that computed 0.80 s of a 1.10 s flush, spent 0.15 s in receives and finished its schedule 0.10 s before
        // the slowest stage: 0.30 s not computing, of which 0.25 s idle and 0.05 s its own work between passes.
        var t = new DeepSpeedSharp.Engine.PipelineBatchTimings(ScheduleSeconds: 1.00, ComputeSeconds: 0.80, MicroBatches: 8, Stages: 2, VirtualStages: 1,
            PipelineSeconds: 1.10, ReceiveSeconds: 0.15);
        Assert.Equal(0.30 / 1.10, t.BubbleFraction, 12);
        Assert.Equal(0.25 / 1.10, t.IdleFraction, 12);
        Assert.Equal(1.0 / 9, t.TheoreticalBubbleFraction, 12);
    }
}
