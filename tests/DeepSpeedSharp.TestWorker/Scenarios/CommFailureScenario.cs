using System.Diagnostics;
using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `comm-failure BACKEND kill|mismatch`: kill — the last rank SIGKILLs itself in the middle of a stream of
/// all-reduces; survivors print "CAUGHT op seq missing=... after=MS". mismatch — rank 0 calls all_reduce while
/// the others call broadcast; every rank prints "CAUGHT" with the message. Exit 0 when the expected error came.
/// </summary>
public sealed class CommFailureScenario : IScenario
{
    public string Name => "comm-failure";

    public int Run(string[] args)
    {
        var world = Dist.Initialize(args[0] == "auto" ? null : args[0], TimeSpan.FromSeconds(120));
        int victim = world.Size - 1;
        using var t = ones(1 << 16);
        var sw = Stopwatch.StartNew();
        try
        {
            if (args[1] == "mismatch")
            {
                if (world.Rank == 0) world.AllReduce(t);
                else world.Broadcast(t, 0);
                Console.WriteLine("NO ERROR");
                return 1;
            }
            for (int i = 0; ; i++)
            {
                if (i == 50 && world.Rank == victim) Process.GetCurrentProcess().Kill();
                sw.Restart();
                world.AllReduce(t);
            }
        }
        catch (DistributedException e)
        {
            Console.WriteLine($"CAUGHT {e.Operation} {e.SequenceNumber} missing={string.Join(",", e.MissingRanks)} after={sw.ElapsedMilliseconds} msg={e.Message}");
            return 0;
        }
    }
}
