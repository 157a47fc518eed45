using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// <c>dss launch --child_guard PID GRACE -- COMMAND...</c>: the process between the runner and pdsh/mpirun. It dies
/// with the runner (parent-death signal, checked against the runner's pid <c>PID</c>), and on that signal — or
/// SIGINT/SIGTERM — stops COMMAND's whole process tree (SIGTERM, then SIGKILL after GRACE seconds): pdsh, its ssh
/// clients or exec'd node launchers, mpirun and the rank launchers it started. Without it a runner killed with
/// SIGKILL would leave pdsh or mpirun, and so every rank, running. COMMAND inherits the guard's stdio.
/// </summary>
public static class ChildGuard
{
    /// <summary>The flag that selects this role (first argument after <c>launch</c>).</summary>
    public const string Flag = "--child_guard";

    /// <summary>The arguments after <c>launch</c> that run <paramref name="command"/> under a guard tied to this process.</summary>
    public static IReadOnlyList<string> Arguments(IReadOnlyList<string> command, double graceSeconds) =>
        [Flag, Environment.ProcessId.ToString(CultureInfo.InvariantCulture), (graceSeconds + 2).ToString(CultureInfo.InvariantCulture), "--", .. command];

    /// <summary>Runs the guard role; <paramref name="args"/> start with <see cref="Flag"/>. Returns COMMAND's exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stderr)
    {
        if (args.Count < 5 || args[0] != Flag || args[3] != "--"
            || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int runner)
            || !double.TryParse(args[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double grace))
            throw new ArgumentException($"{Flag} needs: RUNNER_PID GRACE_SECONDS -- COMMAND... (it is started by dss launch itself).");
        if (!ParentDeath.Arm(runner, ParentDeath.SigTerm) && ParentDeath.ParentPid != runner) return 1; // the runner is already gone
        int signalled = 0;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Interlocked.CompareExchange(ref signalled, ProcessTree.SigTerm, 0); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; Interlocked.CompareExchange(ref signalled, ProcessTree.SigInt, 0); });
        var psi = new ProcessStartInfo(args[4]) { UseShellExecute = false };
        foreach (var a in args.Skip(5)) psi.ArgumentList.Add(a);
        using var child = new Process { StartInfo = psi };
        try { child.Start(); }
        catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException($"could not start '{args[4]}': {e.Message}"); }
        while (!child.WaitForExit(50))
        {
            int sig = Volatile.Read(ref signalled);
            if (sig == 0 && ParentDeath.ParentPid == runner) continue;
            StopTree(child.Id, grace);
            child.WaitForExit(2000);
            return 128 + (sig == 0 ? ProcessTree.SigTerm : sig);
        }
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>SIGTERM to the tree under <paramref name="pid"/>, then SIGKILL to whatever is left after the grace period.</summary>
    private static void StopTree(int pid, double graceSeconds)
    {
        var tree = ProcessTree.WithDescendants(pid);
        foreach (var p in tree) ProcessTree.Signal(p, ProcessTree.SigTerm);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < graceSeconds && tree.Any(ProcessTree.IsAlive)) Thread.Sleep(20);
        foreach (var p in ProcessTree.WithDescendants(pid).Concat(tree).Distinct().Where(ProcessTree.IsAlive)) ProcessTree.Signal(p, ProcessTree.SigKill);
    }
}
