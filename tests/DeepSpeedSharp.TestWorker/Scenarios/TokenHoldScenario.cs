using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `token-hold MS`: joins the job, prints "TOKEN rank R: VALUE" (the job token it was given, for the test that looks for
/// it on every process's command line), holds for MS milliseconds between two barriers, and exits 0.
/// </summary>
public sealed class TokenHoldScenario : IScenario
{
    public string Name => "token-hold";

    public int Run(string[] args)
    {
        var world = Dist.Initialize(null, TimeSpan.FromSeconds(60));
        Console.WriteLine($"TOKEN rank {world.Rank}: {Environment.GetEnvironmentVariable("DSS_JOB_TOKEN")}");
        Console.Out.Flush();
        world.Barrier();
        Thread.Sleep(int.Parse(args[0]));
        world.Barrier();
        Dist.Destroy();
        return 0;
    }
}
