using System.Diagnostics;
using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `deadlock BACKEND MODE`: ranks that wait for each other in operations that cannot match, or (controls) that only
/// look alike for a few seconds. The collective timeout is 120 s, so only the deadlock check can end a real one.
/// Each rank prints "DEADLOCK after=MS msg=..." when an operation fails (MS from entering the blocking call), or "OK".
/// Modes: recv-allreduce (rank 0 receives from 1, rank 1 all-reduces), recv-recv (each receives from the other),
/// newgroup (rank 0 creates a group over 0,1 that rank 1 never creates; rank 1 all-reduces), groups (a group over
/// 0,1 besides the world: rank 0 all-reduces on it, rank 1 on the world); controls: late-send (rank 1 computes 4 s,
/// then sends what rank 0 waits for), chain (3 ranks: rank 0 receives from 1, rank 1 all-reduces on a group with
/// rank 2, which computes 4 s first, then sends to 0), closed-neighbour (3 ranks, a tcp group: rank 1 sends to 0 and
/// closes the group while rank 0 waits 3 s for rank 2's message: a finished neighbour is no failure of a receive).
/// </summary>
public sealed class DeadlockScenario : IScenario
{
    public string Name => "deadlock";

    public int Run(string[] args)
    {
        set_num_threads(1);
        var world = Dist.Initialize(args[0], TimeSpan.FromSeconds(120));
        int me = world.Rank;
        using var t = ones(1024);
        ProcessGroup? pair = args[1] switch
        {
            "groups" => Dist.NewGroup([0, 1]),
            "chain" => Dist.NewGroup([1, 2]),
            "closed-neighbour" => Dist.NewGroup([0, 1, 2], "tcp"),
            _ => null,
        };
        world.Barrier();
        var sw = Stopwatch.StartNew();
        try
        {
            switch (args[1], me)
            {
                case ("recv-allreduce", 0): world.Recv(t, 1); break;
                case ("recv-allreduce", 1): world.AllReduce(t); break;
                case ("recv-recv", _): world.Recv(t, 1 - me); break;
                case ("newgroup", 0): Dist.NewGroup([0, 1]); break;
                case ("newgroup", 1): world.AllReduce(t); break;
                case ("groups", 0): pair!.AllReduce(t); break;
                case ("groups", 1): world.AllReduce(t); break;
                case ("late-send", 0): world.Recv(t, 1); break;
                case ("late-send", 1): Thread.Sleep(4000); world.Send(t, 0); break;
                case ("chain", 0): world.Recv(t, 1); break;
                case ("chain", 1): pair!.AllReduce(t); world.Send(t, 0); break;
                case ("chain", 2): Thread.Sleep(4000); pair!.AllReduce(t); break;
                case ("closed-neighbour", 0): pair!.Recv(t, 1); pair.Recv(t, 2); break;
                case ("closed-neighbour", 1): pair!.Send(t, 0); pair.Dispose(); break;
                case ("closed-neighbour", 2): Thread.Sleep(3000); pair!.Send(t, 0); break;
                default: throw new ArgumentException($"deadlock: unknown mode '{args[1]}' for rank {me}.");
            }
        }
        catch (DistributedException e)
        {
            Console.WriteLine($"DEADLOCK after={sw.ElapsedMilliseconds} msg={e.Message}");
            Console.Out.Flush();
            Thread.Sleep(3000); // the peers name the deadlock too before this rank (and the store rank 0 hosts) is gone
            Environment.Exit(3); // they are still blocked: do not wait for them in Destroy
        }
        world.Barrier();
        Console.WriteLine($"OK after={sw.ElapsedMilliseconds}");
        return 0;
    }
}
