using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>What one rank process did.</summary>
public sealed record RankResult(int Rank, int ExitCode, string Stdout, string Stderr, bool Killed)
{
    /// <summary>Everything the rank printed, for assertion messages.</summary>
    public override string ToString() => $"rank {Rank} exit {ExitCode}{(Killed ? " (killed)" : "")}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Options of <see cref="RankProcesses.Run"/>.</summary>
public sealed class RankOptions
{
    /// <summary>Extra arguments per rank (after the scenario's shared arguments).</summary>
    public Func<int, IEnumerable<string>>? ArgsForRank { get; init; }

    /// <summary>Environment overrides per rank (null value removes a variable).</summary>
    public Func<int, IReadOnlyDictionary<string, string?>>? EnvForRank { get; init; }

    /// <summary>Environment overrides for every rank.</summary>
    public IReadOnlyDictionary<string, string?>? Env { get; init; }

    /// <summary>All ranks are killed when this elapses (default 120 s).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Ranks per host for LOCAL_RANK/LOCAL_SIZE (default: all on one host).</summary>
    public int? RanksPerHost { get; init; }
}

/// <summary>
/// Starts N `dotnet DeepSpeedSharp.TestWorker.dll SCENARIO ARGS` processes with the launcher's environment
/// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_SIZE, LOCAL_WORLD_SIZE, CROSS_RANK, CROSS_SIZE, MASTER_ADDR,
/// MASTER_PORT on a free port, DSS_JOB_TOKEN), collects exit codes and output, and kills all on timeout.
/// </summary>
public static class RankProcesses
{
    /// <summary>Path of the test worker next to the test assembly.</summary>
    public static string WorkerDll => Path.Combine(AppContext.BaseDirectory, "DeepSpeedSharp.TestWorker.dll");

    /// <summary>A TCP port that was free a moment ago on 127.0.0.1.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Runs the scenario on <paramref name="worldSize"/> ranks and returns their results in rank order.</summary>
    public static IReadOnlyList<RankResult> Run(string scenario, int worldSize, IEnumerable<string>? args = null, RankOptions? options = null)
    {
        options ??= new RankOptions();
        int perHost = options.RanksPerHost ?? worldSize;
        int port = FreePort();
        string token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        var shared = (args ?? []).ToList();
        var children = new List<ChildProcess>();
        try
        {
            for (int r = 0; r < worldSize; r++)
            {
                var env = new Dictionary<string, string?>
                {
                    ["RANK"] = $"{r}", ["WORLD_SIZE"] = $"{worldSize}",
                    ["LOCAL_RANK"] = $"{r % perHost}", ["LOCAL_SIZE"] = $"{perHost}", ["LOCAL_WORLD_SIZE"] = $"{perHost}",
                    ["CROSS_RANK"] = $"{r / perHost}", ["CROSS_SIZE"] = $"{(worldSize + perHost - 1) / perHost}",
                    ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port}", ["DSS_JOB_TOKEN"] = token,
                    // N ranks on a few shared cores: libtorch's OpenMP threads spinning at barriers made small tensor
                    // ops 100x slower under load. Override per test when a rank needs more threads.
                    ["OMP_NUM_THREADS"] = "1",
                };
                foreach (var (k, v) in options.Env ?? new Dictionary<string, string?>()) env[k] = v;
                foreach (var (k, v) in options.EnvForRank?.Invoke(r) ?? new Dictionary<string, string?>()) env[k] = v;
                children.Add(new ChildProcess("dotnet", [WorkerDll, scenario, .. shared, .. options.ArgsForRank?.Invoke(r) ?? []], env: env));
            }
            var deadline = DateTime.UtcNow + options.Timeout;
            bool timedOut = false;
            foreach (var child in children)
            {
                var left = deadline - DateTime.UtcNow;
                if (left < TimeSpan.Zero || !child.WaitForExit(left)) { timedOut = true; break; }
            }
            var killed = children.Select(c => timedOut && !c.HasExited).ToArray();
            if (timedOut) foreach (var c in children) c.Kill();
            return children.Select((c, r) => { var o = c.Outcome(); return new RankResult(r, o.ExitCode, o.Stdout, o.Stderr, killed[r]); }).ToArray();
        }
        finally
        {
            foreach (var c in children) c.Dispose();
        }
    }

    /// <summary>Full path of mpirun when it is on PATH, else null (MPI tests skip with that reason).</summary>
    public static string? MpirunPath { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
        .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>
    /// Runs the scenario under `mpirun --oversubscribe -np N` (as root too: OMPI_ALLOW_RUN_AS_ROOT), with TERM=dumb so
    /// .NET writes no terminal codes, and splits the tagged output per rank. Every result carries mpirun's exit code.
    /// </summary>
    public static IReadOnlyList<RankResult> RunMpi(string scenario, int worldSize, IEnumerable<string>? args = null, RankOptions? options = null)
    {
        options ??= new RankOptions();
        var mpirun = MpirunPath ?? throw new InvalidOperationException("mpirun is not installed (apt-get install openmpi-bin).");
        var env = new Dictionary<string, string?>
        {
            ["OMPI_ALLOW_RUN_AS_ROOT"] = "1", ["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1", ["TERM"] = "dumb", ["OMP_NUM_THREADS"] = "1",
            ["RANK"] = null, ["WORLD_SIZE"] = null, ["LOCAL_RANK"] = null, ["LOCAL_SIZE"] = null, ["LOCAL_WORLD_SIZE"] = null,
        };
        foreach (var (k, v) in options.Env ?? new Dictionary<string, string?>()) env[k] = v;
        var run = ChildProcess.Run(mpirun,
            ["--oversubscribe", "--mca", "mpi_yield_when_idle", "1", "--tag-output", "-np", $"{worldSize}", "dotnet", WorkerDll, scenario, .. args ?? []],
            env: env, timeout: options.Timeout);
        var outs = Enumerable.Range(0, worldSize).Select(_ => new StringBuilder()).ToArray();
        var errs = Enumerable.Range(0, worldSize).Select(_ => new StringBuilder()).ToArray();
        var untagged = new StringBuilder();
        foreach (var line in (run.Stdout + run.Stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')))
        {
            // "[job,rank]<stdout>:text" or "[job,rank]<stderr>:text"
            int comma = line.IndexOf(','), close = line.IndexOf(']'), colon = line.IndexOf(">:", StringComparison.Ordinal);
            if (line.StartsWith('[') && comma > 0 && close > comma && colon > close && int.TryParse(line[(comma + 1)..close], out int r) && r < worldSize)
                (line.AsSpan(close + 1).StartsWith("<stdout>") ? outs[r] : errs[r]).AppendLine(line[(colon + 2)..]);
            else untagged.AppendLine(line);
        }
        return Enumerable.Range(0, worldSize).Select(r => new RankResult(r, run.ExitCode, outs[r].ToString(), errs[r].ToString() + untagged, run.TimedOut)).ToArray();
    }

    /// <summary>Asserts every rank exited with 0, showing all output otherwise.</summary>
    public static void AssertAllSucceeded(IReadOnlyList<RankResult> results)
    {
        if (results.All(r => r.ExitCode == 0 && !r.Killed)) return;
        Assert.Fail(string.Join("\n\n", results.Select(r => r.ToString())));
    }
}
