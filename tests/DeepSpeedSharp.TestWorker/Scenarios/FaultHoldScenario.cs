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
/// --timeout=S: the collective timeout in seconds (default 120). --slow=R:MS: rank R computes (sleeps) MS ms before its
/// fifth all-reduce. --iterations=N: exit 0 after N all-reduces (default: never); --more=R:K: rank R runs K more than that. --ds_config=FILE: after joining, builds
/// an engine for a small model with that DeepSpeed config (whose `distributed` section sets the timeouts) and prints
/// "timeouts: collective S s, heartbeat H s".
/// </summary>
public sealed class FaultHoldScenario : IScenario
{
    public string Name => "fault-hold";

    public int Run(string[] args)
    {
        string? pidDir = null, backend = null, dsConfig = null;
        (int Rank, int Ms)? groupDelay = null, slow = null, more = null;
        double timeoutSeconds = 120;
        long iterations = long.MaxValue;
        foreach (var a in args)
        {
            if (a.StartsWith("--pid_dir=", StringComparison.Ordinal)) pidDir = a[10..];
            else if (a.StartsWith("--backend=", StringComparison.Ordinal)) backend = a[10..];
            else if (a.StartsWith("--group_delay=", StringComparison.Ordinal))
            {
                var p = a[14..].Split(':');
                groupDelay = (int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture));
            }
            else if (a.StartsWith("--slow=", StringComparison.Ordinal))
            {
                var p = a[7..].Split(':');
                slow = (int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture));
            }
            else if (a.StartsWith("--more=", StringComparison.Ordinal))
            {
                var p = a[7..].Split(':');
                more = (int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture));
            }
            else if (a.StartsWith("--timeout=", StringComparison.Ordinal)) timeoutSeconds = double.Parse(a[10..], CultureInfo.InvariantCulture);
            else if (a.StartsWith("--ds_config=", StringComparison.Ordinal)) dsConfig = a[12..];
            else if (a.StartsWith("--iterations=", StringComparison.Ordinal)) iterations = long.Parse(a[13..], CultureInfo.InvariantCulture);
            else throw new ArgumentException($"fault-hold: unknown argument '{a}'; use --pid_dir=DIR, --backend=B, --group_delay=R:MS, --timeout=S, --slow=R:MS, --iterations=N, --more=R:K.");
        }
        set_num_threads(1);
        var world = Dist.Initialize(backend, TimeSpan.FromSeconds(timeoutSeconds));
        if (dsConfig != null)
        {
            DeepSpeed.Initialize(nn.Linear(4, 4), config: dsConfig);
            Console.WriteLine($"timeouts: collective {Dist.Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s, heartbeat {Dist.HeartbeatTimeout?.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }
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
        if (more is { } m && m.Rank == world.Rank) iterations += m.Ms;
        for (long i = 0; i < iterations; i++)
        {
            if (i == 4 && slow is { } s && s.Rank == world.Rank) Thread.Sleep(s.Ms);
            world.AllReduce(t);
            Thread.Sleep(100);
        }
        Console.WriteLine($"fault-hold rank {world.Rank} done");
        return 0;
    }
}
