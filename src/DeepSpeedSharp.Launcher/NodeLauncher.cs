using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DeepSpeedSharp.Comm.Shm;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The per-node half of the launcher (DeepSpeed's <c>launch.py</c>): starts the node's ranks with their
/// environment, prefixes their output with <c>[rank N]</c> (or writes per-rank logs), and fails fast: when a
/// rank exits non-zero or dies, the others get SIGTERM, then SIGKILL after the grace period, the failing rank
/// and the tail of its output are reported, and the launcher exits with that rank's code (a rank killed by
/// signal S counts as 128 + S). SIGINT/SIGTERM to the launcher stop every rank the same way (exit 128 + signal).
/// </summary>
public static class NodeLauncher
{
    private const string Tag = "[dss launch]";

    /// <summary>A job's /dev/shm file whose creating rank is gone is removed at the next launch once it is this old.</summary>
    public static readonly TimeSpan StaleSharedMemoryAge = TimeSpan.FromMinutes(10);

    /// <summary>The command and environment of each rank this node starts (also what --dry-run prints).</summary>
    public static IReadOnlyList<RankCommand> RankCommands(NodeLaunchSpec spec)
    {
        var globalRanks = spec.World.GlobalRanksOf(spec.NodeRank);
        IReadOnlyList<int>? cores = null;
        if (spec.BindCoresToRank)
            cores = CoreBinding.HostCores(spec.BindCoreList, spec.HostCores);
        var result = new List<RankCommand>();
        for (int local = 0; local < globalRanks.Count; local++)
        {
            if (spec.OnlyLocalRank is { } only && only != local) continue;
            var env = new Dictionary<string, string>(spec.Exports, StringComparer.Ordinal);
            foreach (var (k, v) in RankEnvironment.For(spec.World, spec.NodeRank, local, spec.MasterAddr, spec.MasterPort, spec.JobToken)) env[k] = v;
            env[RankEnvironment.LauncherPidVariable] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture); // the rank dies with this process
            var command = new List<string>();
            if (cores != null)
            {
                var mine = CoreBinding.CoresFor(cores, globalRanks.Count, local);
                command.AddRange(CoreBinding.CommandPrefix(mine));
                env["OMP_NUM_THREADS"] = mine.Count.ToString(CultureInfo.InvariantCulture);
            }
            else if (!env.ContainsKey("OMP_NUM_THREADS") && Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null && globalRanks.Count > 1)
            {
                // As torchrun does: without an explicit setting, ranks sharing a host split its cores instead of each
                // starting one thread per core (which oversubscribes the CPU and is several times slower).
                env["OMP_NUM_THREADS"] = Math.Max(1, spec.HostCores / globalRanks.Count).ToString(CultureInfo.InvariantCulture);
            }
            command.AddRange(spec.ProgramCommand);
            if (!spec.NoLocalRank) command.Add($"--local_rank={local}");
            command.AddRange(spec.ProgramArgs);
            result.Add(new RankCommand(globalRanks[local], local, command, env));
        }
        return result;
    }

    /// <summary>Runs the node's ranks to completion; returns the exit code for the launcher process.</summary>
    /// <param name="spec">What to run.</param>
    /// <param name="stdout">Where rank stdout lines go (prefixed).</param>
    /// <param name="stderr">Where rank stderr lines and the launcher's messages go.</param>
    /// <param name="handleSignals">Catch SIGINT/SIGTERM and stop the ranks (the CLI does; an in-process caller may not).</param>
    public static int Run(NodeLaunchSpec spec, TextWriter stdout, TextWriter stderr, bool handleSignals = true) =>
        RunOnce(spec, stdout, stderr, handleSignals).Code;

    /// <summary>Runs the node's ranks to completion; says how the run ended (for <c>--max_restarts</c>).</summary>
    public static JobOutcome RunOnce(NodeLaunchSpec spec, TextWriter stdout, TextWriter stderr, bool handleSignals = true)
    {
        var commands = RankCommands(spec);
        if (commands.Any(c => c.Rank == 0)) MasterPort.EnsureFree(spec.MasterAddr, spec.MasterPort); // rank 0 hosts the store
        var stale = ShmJobFiles.RemoveStale(ProcessTree.IsAlive, StaleSharedMemoryAge);
        if (stale.Count > 0) stderr.WriteLine($"{Tag} removed {stale.Count} shared-memory file(s) of earlier jobs whose ranks are gone: {string.Join(", ", stale)}");
        string? logPrefix = null;
        if (spec.EachRankLogDir != null)
        {
            if (File.Exists(spec.EachRankLogDir))
                throw new ArgumentException($"--enable_each_rank_log {spec.EachRankLogDir} should not be a file, it should be a directory.");
            Directory.CreateDirectory(spec.EachRankLogDir);
            logPrefix = Path.Combine(spec.EachRankLogDir, DateTime.Now.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture));
        }
        string? pidFile = spec.SavePidOwner != 0 ? $"/tmp/{spec.SavePidOwner}.deepspeed" : null;
        if (pidFile != null)
        {
            if (File.Exists(pidFile)) throw new InvalidOperationException($"--save_pid: pid file {pidFile} already exists.");
            File.WriteAllText(pidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            stderr.WriteLine($"{Tag} launcher pid: {Environment.ProcessId}");
        }

        int signalled = 0;
        var registrations = new List<PosixSignalRegistration>();
        if (handleSignals)
        {
            foreach (var (sig, num) in new[] { (PosixSignal.SIGINT, ProcessTree.SigInt), (PosixSignal.SIGTERM, ProcessTree.SigTerm) })
                registrations.Add(PosixSignalRegistration.Create(sig, ctx => { ctx.Cancel = true; Interlocked.CompareExchange(ref signalled, num, 0); }));
        }
        int parent = ProcessTree.ParentPid();
        var sinkLock = new RepeatedErrors();
        var ranks = new List<RankProcess>();
        try
        {
            foreach (var c in commands)
            {
                if (Volatile.Read(ref signalled) != 0) break;
                string? log = logPrefix != null ? $"{logPrefix}_rank{c.Rank}.log" : null;
                ranks.Add(new RankProcess(c.Rank, c.Command, c.Environment, spec.WorkingDirectory, stdout, stderr, sinkLock, log));
            }
            int code = Supervise(spec, ranks, () => Volatile.Read(ref signalled), parent, stderr, sinkLock);
            return new JobOutcome(code, null, [], Signalled: Volatile.Read(ref signalled) != 0);
        }
        catch
        {
            Stop(ranks, spec.GracePeriodSeconds);
            throw;
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
            foreach (var r in ranks) r.Dispose();
            if (pidFile != null) File.Delete(pidFile);
            RemoveSharedMemoryLeftovers(spec, stderr, sinkLock);
        }
    }

    private static int Supervise(NodeLaunchSpec spec, List<RankProcess> ranks, Func<int> signalled, int parent, TextWriter stderr, RepeatedErrors sinkLock)
    {
        var running = new List<RankProcess>(ranks);
        while (true)
        {
            int sig = signalled();
            if (sig != 0)
            {
                Report(stderr, sinkLock, $"{Tag} received {(sig == ProcessTree.SigInt ? "SIGINT" : "SIGTERM")}; stopping {running.Count(r => !r.HasExited)} rank(s).");
                Stop(ranks, spec.GracePeriodSeconds);
                return 128 + sig;
            }
            if (spec.WatchParent && ProcessTree.ParentPid() != parent)
            {
                Report(stderr, sinkLock, $"{Tag} node {spec.NodeRank}: the process that started this launcher is gone; stopping the ranks.");
                Stop(ranks, spec.GracePeriodSeconds);
                return 1;
            }
            foreach (var r in running.ToList())
            {
                if (!r.HasExited) continue;
                r.WaitForExit(1000);
                int code = r.ExitCode;
                running.Remove(r);
                if (code == 0) continue;
                var others = running.Count;
                var statesBeforeStop = ranks.ToDictionary(x => x.Rank, x => x.HasExited ? null : ProcessTree.State(x.Pid));
                Stop(ranks, spec.GracePeriodSeconds);
                var why = code > 128 ? $"exited with code {code} (128 + signal {code - 128}{SignalName(code - 128)}: it was killed)" : $"exited with code {code}";
                var tail = r.Tail();
                // A rank that ended on an error it described (DeepSpeedSharp's "[dss] error: ..." line) is reported by that
                // line, once: its output already went by live.
                var cause = tail.LastOrDefault(t => t.Contains(ErrorMarker, StringComparison.Ordinal));
                var lines = new List<string>();
                var frozen = FrozenRankReport.Announced(ranks);
                if (frozen.Count > 0)
                    lines.AddRange(FrozenRankReport.Lines(Tag, frozen, ranks, statesBeforeStop, spec.NodeRank));
                var finished = ranks.Where(x => x != r && x.HasExited && !running.Contains(x) && x.ExitCode == 0).Select(x => x.Rank).ToList();
                if (cause != null)
                {
                    var said = Comm.UnhandledErrors.WithoutRankPrefix(r.Rank, cause[(cause.IndexOf(ErrorMarker, StringComparison.Ordinal) + ErrorMarker.Length)..]);
                    lines.Add($"{Tag} rank {r.Rank} (pid {r.Pid}, node {spec.NodeRank}) failed: {said}");
                    lines.Add($"{Tag} ({why}; stopped the {others} other rank(s) still running on this node)");
                    if (finished.Count > 0)
                        lines.Add($"{Tag} rank(s) {string.Join(",", finished)} had already finished (exit code 0): if rank {r.Rank} waited for them, the ranks ran different numbers of operations.");
                    if (r.LogPath != null) lines.Add($"{Tag} its log: {r.LogPath}");
                }
                else if (r.LogPath == null && tail.LastOrDefault(RepeatedErrors.IsError) is { } error)
                {
                    // The rank said what went wrong, on the terminal, just above: point at it instead of quoting it.
                    var alike = sinkLock.RanksThatSaid(error);
                    lines.Add($"{Tag} rank {r.Rank} (pid {r.Pid}, node {spec.NodeRank}) {why} after the error above" +
                              (alike.Count > 1 ? $" (ranks {string.Join(",", alike.Order())} printed it)" : "") + $"; stopped the {others} other rank(s) still running on this node.");
                }
                else
                {
                    lines.Add($"{Tag} rank {r.Rank} (pid {r.Pid}, node {spec.NodeRank}) {why}; stopped the {others} other rank(s) still running on this node.");
                    if (r.LogPath != null) lines.Add($"{Tag} its log: {r.LogPath}");
                    if (tail.Count > 0)
                    {
                        lines.Add($"{Tag} last {tail.Count} line(s) of rank {r.Rank}'s output:");
                        lines.AddRange(tail.Select(t => $"{Tag}   | {t}"));
                    }
                    else lines.Add($"{Tag} rank {r.Rank} printed nothing.");
                }
                Report(stderr, sinkLock, string.Join(Environment.NewLine, lines));
                return code;
            }
            if (running.Count == 0) return 0;
            Thread.Sleep(50);
        }
    }

    /// <summary>How a DeepSpeedSharp rank's own error line starts.</summary>
    private const string ErrorMarker = Comm.UnhandledErrors.Marker;

    /// <summary>SIGTERM to every live rank's process tree, then SIGKILL to whatever is left after the grace period.</summary>
    private static void Stop(List<RankProcess> ranks, double graceSeconds)
    {
        var trees = new List<int>();
        foreach (var r in ranks.Where(r => !r.HasExited)) trees.AddRange(ProcessTree.WithDescendants(r.Pid));
        foreach (var pid in trees) ProcessTree.Signal(pid, ProcessTree.SigTerm);
        foreach (var pid in trees) ProcessTree.Signal(pid, ProcessTree.SigCont); // a stopped (frozen) rank acts on SIGTERM only once resumed
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed.TotalSeconds < graceSeconds && trees.Any(ProcessTree.IsAlive)) Thread.Sleep(20);
        foreach (var pid in trees.Where(ProcessTree.IsAlive)) ProcessTree.Signal(pid, ProcessTree.SigKill);
        foreach (var r in ranks) r.WaitForExit(2000);
    }

    /// <summary>
    /// Removes the job's /dev/shm files whose creating rank is gone: a rank killed while its group was being set up
    /// (before every member mapped the segment and it removed the file) leaves one behind.
    /// </summary>
    private static void RemoveSharedMemoryLeftovers(NodeLaunchSpec spec, TextWriter stderr, RepeatedErrors sinkLock)
    {
        string jobId;
        try { jobId = ShmJobFiles.JobIdOf(spec.JobToken); }
        catch (FormatException) { return; } // not a hex token: the ranks refused it, so they made no files
        var removed = ShmJobFiles.RemoveLeftovers(jobId, ProcessTree.IsAlive);
        if (removed.Count > 0)
            Report(stderr, sinkLock, $"{Tag} removed {removed.Count} shared-memory file(s) a rank left behind: {string.Join(", ", removed)}");
    }

    private static string SignalName(int sig) => sig switch
    {
        1 => ", SIGHUP", 2 => ", SIGINT", 6 => ", SIGABRT", 9 => ", SIGKILL", 11 => ", SIGSEGV", 15 => ", SIGTERM", _ => "",
    };

    private static void Report(TextWriter stderr, object sinkLock, string text)
    {
        lock (sinkLock)
        {
            stderr.WriteLine(text);
            stderr.Flush();
        }
    }
}
