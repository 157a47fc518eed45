using DeepSpeedSharp.Optim;
using DeepSpeedSharp.Schedulers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Schedulers;

/// <summary>Helpers for the scheduler tests: a small optimizer and "step to iteration i, read the optimizer's lr".</summary>
internal static class SchedulerTestUtil
{
    public static FusedAdam Adam(double lr = 0.1, int groups = 1) =>
        new(Enumerable.Range(0, groups).Select(_ => new FusedAdam.ParamGroup(new[] { new Parameter(zeros(2)) })), lr: lr);

    public static SGD Sgd(double lr = 0.1) => new(new[] { new Parameter(zeros(2)) }, lr, 0.9, 0, 0, false, false);

    /// <summary>The optimizer's learning rate (first group).</summary>
    public static double Lr(torch.optim.Optimizer opt) => opt.ParamGroups.First().LearningRate;

    /// <summary>Steps until LastBatchIteration == <paramref name="iteration"/> and returns the optimizer's lr.</summary>
    public static double LrAt(LrScheduler s, int iteration)
    {
        Assert.True(iteration >= s.LastBatchIteration, "tests step forward only");
        while (s.LastBatchIteration < iteration) s.Step();
        var lr = Lr(s.Optimizer);
        Assert.Equal(lr, s.GetLastLr()[0]);
        Assert.Equal(lr, s.GetLr()[0]);
        return lr;
    }
}
