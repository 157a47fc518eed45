using DeepSpeedSharp.Pipeline;

namespace DeepSpeedSharp.Tests.Pipeline;

/// <summary>
/// The interleaved schedule as data: every (chunk, micro-batch) runs forward then backward exactly once per stage, the
/// first and last parts read the data, sends and receives pair up in order on every link, and a simulated execution
/// with asynchronous sends and blocking receives (the engine's) finishes on every stage — no deadlock.
/// </summary>
public class InterleavedScheduleTests
{
    [Theory]
    [InlineData(4, 2, 2)]
    [InlineData(8, 2, 2)]
    [InlineData(8, 4, 2)]
    [InlineData(4, 4, 3)]
    [InlineData(12, 3, 2)]
    [InlineData(2, 2, 4)]
    public void EveryPassRunsOnceAndTheStagesNeverWaitForEachOtherForever(int microBatches, int stages, int chunks)
    {
        var schedules = Enumerable.Range(0, stages).Select(s => new InterleavedSchedule(microBatches, stages, s, chunks)).ToList();
        foreach (var schedule in schedules)
        {
            var instructions = schedule.Steps().SelectMany(step => step).ToList();
            for (int c = 0; c < chunks; c++)
                for (int mb = 0; mb < microBatches; mb++)
                {
                    int f = instructions.FindIndex(i => i is ForwardPass p && p.Chunk == c && p.BufferId == mb);
                    int b = instructions.FindIndex(i => i is BackwardPass p && p.Chunk == c && p.BufferId == mb);
                    Assert.True(f >= 0 && b > f, $"stage {schedule.StageId}: chunk {c} micro-batch {mb} forward at {f}, backward at {b}");
                    Assert.Equal(1, instructions.Count(i => i is ForwardPass p && p.Chunk == c && p.BufferId == mb));
                    Assert.Equal(1, instructions.Count(i => i is BackwardPass p && p.Chunk == c && p.BufferId == mb));
                }
            int loads = instructions.Count(i => i is LoadMicroBatch);
            Assert.Equal(schedule.StageId == 0 || schedule.StageId == stages - 1 ? microBatches : 0, loads);
            Assert.IsType<OptimizerStep>(instructions[^1]);
        }
        Simulate(schedules.Select(s => (PipeSchedule)s).ToList(), bufferIsMicroBatch: true);
    }

    [Theory]
    [InlineData(4, 2)]
    [InlineData(8, 4)]
    [InlineData(3, 3)]
    public void TheOneF1BScheduleAlsoRunsToTheEnd(int microBatches, int stages) =>
        Simulate(Enumerable.Range(0, stages).Select(s => (PipeSchedule)new TrainSchedule(microBatches, stages, s)).ToList(), bufferIsMicroBatch: false);

    [Theory]
    [InlineData(8, 2, 1, 1)]
    [InlineData(5, 2, 1, 2)]
    [InlineData(7, 3, 1, 1)]
    [InlineData(16, 4, 1, 1)]
    [InlineData(3, 4, 1, 1)]
    [InlineData(8, 1, 1, 2)]
    public void StagesThatRunAheadStillRunEveryPassOnceAndToTheEnd(int microBatches, int stages, int chunks, int runAhead)
    {
        var schedules = Enumerable.Range(0, stages).Select(s => new InterleavedSchedule(microBatches, stages, s, chunks, runAhead: runAhead)).ToList();
        foreach (var schedule in schedules)
        {
            var instructions = schedule.Steps().SelectMany(step => step).ToList();
            var passes = instructions.OfType<BufferOpInstruction>().Where(i => i is ForwardPass or BackwardPass).ToList();
            Assert.Equal(2 * microBatches * chunks, passes.Count);
            // Backwards in micro-batch order per chunk: the gradients accumulate in the same order as without run-ahead.
            for (int c = 0; c < chunks; c++)
                Assert.Equal(Enumerable.Range(0, microBatches), passes.Where(i => i is BackwardPass && i.Chunk == c).Select(i => i.BufferId));
            int firstBackward = passes.FindIndex(i => i is BackwardPass);
            // The warm-up, then the first steady forward (none when the warm-up takes every pass).
            Assert.Equal(Math.Min(schedule.WarmupPasses + 1, microBatches * chunks), firstBackward);
            Assert.IsType<OptimizerStep>(instructions[^1]);
        }
        Simulate(schedules.Select(s => (PipeSchedule)s).ToList(), bufferIsMicroBatch: true);
    }

    [Fact]
    public void RunAheadAddsForwardsPerLaterStageToTheWarmUp()
    {
        // One chunk: 1F1B's stages − stage − 1, times (1 + k).
        Assert.Equal([3, 2, 1, 0], Enumerable.Range(0, 4).Select(s => new InterleavedSchedule(16, 4, s, 1).WarmupPasses));
        Assert.Equal([6, 4, 2, 0], Enumerable.Range(0, 4).Select(s => new InterleavedSchedule(16, 4, s, 1, runAhead: 1).WarmupPasses));
        Assert.Equal(3, new InterleavedSchedule(3, 2, 0, 1, runAhead: 5).WarmupPasses); // at most every pass
        Assert.Throws<ArgumentOutOfRangeException>(() => new InterleavedSchedule(8, 2, 0, 1, runAhead: -1));
        // Virtual stages wait on each other around the ring: running ahead would deadlock (the simulation stops), so it is refused.
        var e = Assert.Throws<ArgumentException>(() => new InterleavedSchedule(8, 4, 0, 2, runAhead: 1));
        Assert.Contains("pipeline.run_ahead_micro_batches 1 does not combine with 2 virtual stages", e.Message);
        // With one chunk the micro-batches need not be a multiple of the stages.
        Assert.Equal(7, new InterleavedSchedule(7, 2, 0, 1, runAhead: 1).Passes);
    }

    [Fact]
    public void MicroBatchesMustBeAMultipleOfTheStages()
    {
        var e = Assert.Throws<ArgumentException>(() => new InterleavedSchedule(6, 4, 0, 2));
        Assert.Contains("multiple of the pipeline stages (4)", e.Message);
    }

    [Fact]
    public void TheWarmUpIsMegatronsAndChunksArePrinted()
    {
        var s = new InterleavedSchedule(8, 4, 1, 2);
        Assert.Equal((4 - 1 - 1) * 2 + (2 - 1) * 4, s.WarmupPasses);
        Assert.Equal((1, 0), s.At(4, forward: true));   // virtual micro-batch 4: chunk 1, micro-batch 0
        Assert.Equal((0, 0), s.At(4, forward: false));  // backward visits the chunks in reverse
        Assert.Equal("ForwardPass(buffer_id=3, chunk=1)", new ForwardPass(3, 1).ToString());
        Assert.Equal("ForwardPass(buffer_id=3)", new ForwardPass(3).ToString());
    }

    /// <summary>
    /// Runs every stage's instructions as the engine does — sends never block, a receive waits for its message — and fails
    /// if the stages stop with instructions left. Messages are (part boundary, micro-batch), checked in order on each link
    /// (the 1F1B schedule's buffer ids are per-stage slots, not micro-batches: there only the boundary is compared).
    /// </summary>
    private static void Simulate(IReadOnlyList<PipeSchedule> schedules, bool bufferIsMicroBatch)
    {
        int p = schedules.Count;
        var programs = schedules.Select(s => s.Steps().SelectMany(step => step).ToList()).ToList();
        var position = new int[p];
        var activations = new Dictionary<(int From, int To), Queue<(int Boundary, int Mb)>>();
        var gradients = new Dictionary<(int From, int To), Queue<(int Boundary, int Mb)>>();
        Queue<(int, int)> Link(Dictionary<(int, int), Queue<(int, int)>> d, int from, int to) =>
            d.TryGetValue((from, to), out var q) ? q : d[(from, to)] = new Queue<(int, int)>();
        bool progress = true;
        while (progress)
        {
            progress = false;
            for (int s = 0; s < p; s++)
            {
                while (position[s] < programs[s].Count)
                {
                    int next = (s + 1) % p, prev = (s + p - 1) % p;
                    var i = programs[s][position[s]];
                    int part = i is BufferOpInstruction b ? b.Chunk * p + s : 0, mb = bufferIsMicroBatch ? (i as BufferOpInstruction)?.BufferId ?? 0 : 0;
                    switch (i)
                    {
                        case SendActivation: Link(activations, s, next).Enqueue((part + 1, mb)); break;
                        case SendGrad: Link(gradients, s, prev).Enqueue((part, mb)); break;
                        case RecvActivation:
                            if (Link(activations, prev, s).Count == 0) goto blocked;
                            Assert.Equal((part, mb), Link(activations, prev, s).Dequeue());
                            break;
                        case RecvGrad:
                            if (Link(gradients, next, s).Count == 0) goto blocked;
                            Assert.Equal((part + 1, mb), Link(gradients, next, s).Dequeue());
                            break;
                    }
                    position[s]++;
                    progress = true;
                }
                blocked:;
            }
        }
        for (int s = 0; s < p; s++)
            Assert.True(position[s] == programs[s].Count, $"stage {s} is stuck at instruction {position[s]} ({programs[s][Math.Min(position[s], programs[s].Count - 1)]}) of {programs[s].Count}");
        Assert.All(activations.Values.Concat(gradients.Values), q => Assert.Empty(q));
    }
}
