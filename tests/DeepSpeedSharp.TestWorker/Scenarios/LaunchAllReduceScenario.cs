using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// A program for launcher tests: joins the job the launcher described (Dist.Initialize from the environment),
/// all-reduces rank+1 over 1,001 floats and checks the sum N(N+1)/2. Prints "allreduce ok rank R of N backend B host H".
/// </summary>
public sealed class LaunchAllReduceScenario : IScenario
{
    public string Name => "launch-allreduce";

    public int Run(string[] args)
    {
        var world = Dist.Initialize();
        int n = world.Size, rank = Dist.Rank;
        using var t = full(1001, rank + 1, ScalarType.Float32);
        world.AllReduce(t);
        float expected = n * (n + 1) / 2f;
        if (!t.eq(expected).all().item<bool>())
        {
            Console.Error.WriteLine($"allreduce wrong on rank {rank}: got {t[0].item<float>()}, expected {expected}");
            return 1;
        }
        Console.WriteLine($"allreduce ok rank {rank} of {n} backend {world.Backend} host {Environment.GetEnvironmentVariable("DSS_HOST_ID")}");
        Dist.Destroy();
        return 0;
    }
}
