using System.Diagnostics;
using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `comm-failure WORLD_BACKEND kill [BACKEND...]`: builds the world plus one group over all ranks per extra backend,
/// then the last rank SIGKILLs itself in the middle of a stream of world all-reduces. Survivors print
/// "CAUGHT backend op seq missing=... after=MS msg=..." for the world, then run one all-reduce on each extra group and
/// print the same for it. Exit 0 when every expected error came.
/// </summary>
public sealed class CommFailureScenario : IScenario
{
    public string Name => "comm-failure";

    public int Run(string[] args)
    {
        TorchSharp.torch.set_num_threads(1);
        var world = Dist.Initialize(args[0] == "auto" ? null : args[0], TimeSpan.FromSeconds(120));
        if (args[1] != "kill") throw new ArgumentException($"comm-failure: unknown mode '{args[1]}'; use kill.");
        var extra = args.Skip(2).Select(b => Dist.NewGroup(Enumerable.Range(0, world.Size).ToArray(), b)).ToList();
        int victim = world.Size - 1;
        using var t = ones(1 << 16);
        var sw = Stopwatch.StartNew();
        int caught = 0;
        try
        {
            for (int i = 0; ; i++)
            {
                if (i == 50 && world.Rank == victim) Process.GetCurrentProcess().Kill();
                sw.Restart();
                world.AllReduce(t);
            }
        }
        catch (DistributedException e) { Report(world, e, sw); caught++; }
        foreach (var g in extra)
        {
            sw.Restart();
            try { g.AllReduce(t); }
            catch (DistributedException e) { Report(g, e, sw); caught++; }
        }
        return caught == 1 + extra.Count ? 0 : 1;
    }

    private static void Report(ProcessGroup g, DistributedException e, Stopwatch sw) =>
        Console.WriteLine($"CAUGHT {g.Backend} {e.Operation} {e.SequenceNumber} missing={string.Join(",", e.MissingRanks)} after={sw.ElapsedMilliseconds} msg={e.Message}");
}
