using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// A rank started by <c>dss launch</c> dies with its launcher: the launcher's pid comes in DSS_LAUNCHER_PID; when it
/// is this process's parent, the kernel SIGKILLs the rank the moment the launcher dies (parent-death signal, then a
/// check that the launcher did not die before it was set); when the rank runs under a wrapper (a shell script, …), a
/// background thread checks every 250 ms that the launcher is still an ancestor. Without DSS_LAUNCHER_PID (torchrun,
/// mpirun alone, tests) nothing is armed.
/// </summary>
internal static class LauncherWatch
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);
    private static int _armed;

    /// <summary>Arms once per process (called first thing by the communication runtime).</summary>
    public static void Arm(LaunchEnvironment env)
    {
        if (env.LauncherPid is not { } launcher || !OperatingSystem.IsLinux()) return;
        if (Interlocked.Exchange(ref _armed, 1) != 0) return;
        string gone = $"rank {env.Rank}: its launcher (dss launch, pid {launcher}) is gone; exiting.";
        if (ParentDeath.ParentPid == launcher)
        {
            if (ParentDeath.Arm(launcher, ParentDeath.SigKill)) return;
            if (ParentDeath.ParentPid != launcher) ParentDeath.KillSelf(gone); // it died before the signal was set
        }
        else if (!ParentDeath.IsAncestor(launcher)) ParentDeath.KillSelf(gone);
        new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(PollInterval);
                if (!ParentDeath.IsAncestor(launcher)) ParentDeath.KillSelf(gone);
            }
        }) { IsBackground = true, Name = "dss-launcher-watch" }.Start();
    }
}
