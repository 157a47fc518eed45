using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `throw RANK KIND MESSAGE`: joins the job, then rank RANK throws an exception nobody catches — KIND "argument" (a
/// user's mistake) or "null" (a bug) — while the other ranks all-reduce until the job is stopped.
/// </summary>
public sealed class ThrowScenario : IScenario
{
    public string Name => "throw";

    public int Run(string[] args)
    {
        set_num_threads(1);
        var world = Dist.Initialize(null, TimeSpan.FromSeconds(60));
        if (world.Rank == int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture))
        {
            Thread.Sleep(300);
            if (args[1] == "null") throw new NullReferenceException(args[2]);
            throw new ArgumentException(args[2]);
        }
        using var t = ones(4);
        while (true)
        {
            world.AllReduce(t);
            Thread.Sleep(50);
        }
    }
}
