using System.Globalization;
using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `fault-hold`: a rank for the fault-injection tests. Joins the job (Dist.Initialize, backend from --backend=B, auto
/// when absent), writes its pid to DIR/rank&lt;RANK&gt;.pid once initialised (--pid_dir=DIR), then all-reduces a small
/// tensor every 100 ms, forever (the tests kill something and watch what happens).
/// --group_delay=R:MS: after the world is up, every rank builds one more shm group over all ranks, rank R only after
/// sleeping MS ms (so rank 0 holds a fresh segment in /dev/shm that the others have not mapped yet).
/// </summary>
public sealed class FaultHoldScenario : IScenario
{
    public string Name => "fault-hold";

    public int Run(string[] args)
    {
        string? pidDir = null, backend = null;
        (int Rank, int Ms)? groupDelay = null;
        foreach (var a in args)
        {
            if (a.StartsWith("--pid_dir=", StringComparison.Ordinal)) pidDir = a[10..];
            else if (a.StartsWith("--backend=", StringComparison.Ordinal)) backend = a[10..];
            else if (a.StartsWith("--group_delay=", StringComparison.Ordinal))
            {
                var p = a[14..].Split(':');
                groupDelay = (int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture));
            }
            else throw new ArgumentException($"fault-hold: unknown argument '{a}'; use --pid_dir=DIR, --backend=B, --group_delay=R:MS.");
        }
        set_num_threads(1);
        var world = Dist.Initialize(backend, TimeSpan.FromSeconds(120));
        if (pidDir != null)
        {
            var tmp = Path.Combine(pidDir, $"rank{world.Rank}.pid.tmp");
            File.WriteAllText(tmp, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            File.Move(tmp, Path.Combine(pidDir, $"rank{world.Rank}.pid"));
        }
        Console.WriteLine($"fault-hold rank {world.Rank} of {world.Size} backend {world.Backend} up");
        if (groupDelay is { } d)
        {
            if (world.Rank == d.Rank) Thread.Sleep(d.Ms);
            Dist.NewGroup(Enumerable.Range(0, world.Size).ToArray(), "shm");
        }
        using var t = ones(64);
        while (true)
        {
            world.AllReduce(t);
            Thread.Sleep(100);
        }
    }
}
