using System.Globalization;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// A rank for the launcher tests: prints the launcher's variables as NAME=VALUE (plus PID and ARGS), optionally
/// writes its pid to DIR/rank&lt;RANK&gt;.pid, then exits with a code when it is the chosen rank, or sleeps until killed.
/// Flags: --pid_dir=DIR, --env=NAME (extra variable), --exit_if_rank=R:CODE, --sleep (all other ranks sleep),
/// --exit_after_ms=N (sleep N ms, then exit 0), --wait_for_pids=N (before exiting with a code, wait until N pid files exist).
/// </summary>
public sealed class LaunchProbeScenario : IScenario
{
    private static readonly string[] Standard =
        ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_SIZE", "CROSS_RANK", "CROSS_SIZE", "MASTER_ADDR", "MASTER_PORT", "DSS_JOB_TOKEN", "CUDA_VISIBLE_DEVICES"];

    public string Name => "launch-probe";

    public int Run(string[] args)
    {
        var rank = Environment.GetEnvironmentVariable("RANK") ?? "?";
        var names = Standard.ToList();
        string? pidDir = null;
        (string Rank, int Code)? exitIf = null;
        bool sleep = false;
        int exitAfter = -1, waitForPids = 0;
        foreach (var a in args)
        {
            if (a.StartsWith("--pid_dir=", StringComparison.Ordinal)) pidDir = a[10..];
            else if (a.StartsWith("--env=", StringComparison.Ordinal)) names.Add(a[6..]);
            else if (a.StartsWith("--exit_if_rank=", StringComparison.Ordinal))
            {
                var parts = a[15..].Split(':');
                exitIf = (parts[0], int.Parse(parts[1], CultureInfo.InvariantCulture));
            }
            else if (a == "--sleep") sleep = true;
            else if (a.StartsWith("--wait_for_pids=", StringComparison.Ordinal)) waitForPids = int.Parse(a[16..], CultureInfo.InvariantCulture);
            else if (a.StartsWith("--exit_after_ms=", StringComparison.Ordinal)) exitAfter = int.Parse(a[16..], CultureInfo.InvariantCulture);
        }
        foreach (var n in names) Console.WriteLine($"{n}={Environment.GetEnvironmentVariable(n)}");
        Console.WriteLine($"PID={Environment.ProcessId}");
        Console.WriteLine($"ARGS={string.Join(" ", args)}");
        if (pidDir != null)
        {
            var tmp = Path.Combine(pidDir, $"rank{rank}.pid.tmp");
            File.WriteAllText(tmp, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            File.Move(tmp, Path.Combine(pidDir, $"rank{rank}.pid"));
        }
        if (exitIf is { } e && e.Rank == rank)
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (pidDir != null && Directory.GetFiles(pidDir, "*.pid").Length < waitForPids && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Console.Error.WriteLine($"rank {rank} fails on purpose with code {e.Code}");
            return e.Code;
        }
        if (exitAfter >= 0) Thread.Sleep(exitAfter);
        else if (sleep) Thread.Sleep(Timeout.Infinite);
        return 0;
    }
}
