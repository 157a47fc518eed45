using DeepSpeedSharp.Schedulers;
using static DeepSpeedSharp.Tests.Schedulers.SchedulerTestUtil;

namespace DeepSpeedSharp.Tests.Schedulers;

public class SchedulerRangeTestTests
{
    private const int P = 12;

    [Fact]
    public void ContinuousGrowth()
    {
        using var opt = Adam();
        var s = new LRRangeTest(opt, lrRangeTestMinLr: 0.01, lrRangeTestStepSize: 5, lrRangeTestStepRate: 2);
        Assert.Equal(0.01, Lr(opt));
        Assert.Equal(new[] { 0.01 }, s.GetLastLr());
        Assert.Equal(0.014, LrAt(s, 0), P); // 0.01 * (1 + 2 * 1/5)
        Assert.Equal(0.03, LrAt(s, 4), P);  // 0.01 * (1 + 2 * 5/5)
        Assert.Equal(0.05, LrAt(s, 9), P);  // 0.01 * (1 + 2 * 10/5)
    }

    [Fact]
    public void StaircaseGrowth()
    {
        using var opt = Adam();
        var s = new LRRangeTest(opt, 0.01, 5, 2, lrRangeTestStaircase: true);
        Assert.Equal(0.01, LrAt(s, 0), P);  // floor(1/5) = 0
        Assert.Equal(0.01, LrAt(s, 3), P);  // floor(4/5) = 0
        Assert.Equal(0.03, LrAt(s, 4), P);  // floor(5/5) = 1: 0.01 * (1 + 2)
        Assert.Equal(0.05, LrAt(s, 9), P);  // floor(10/5) = 2
        Assert.Equal(0.05, LrAt(s, 10), P); // floor(11/5) = 2
    }

    [Fact]
    public void ExplicitBatchIterationJumps()
    {
        using var opt = Adam();
        var s = new LRRangeTest(opt, 0.01, 5, 2);
        s.Step(99);
        Assert.Equal(99, s.LastBatchIteration);
        Assert.Equal(0.41, Lr(opt), P); // 0.01 * (1 + 2 * 100/5)
        Assert.Contains("lr_range_test_step_size", Assert.Throws<ArgumentException>(() => new LRRangeTest(opt, 0.01, 0)).Message);
    }
}
