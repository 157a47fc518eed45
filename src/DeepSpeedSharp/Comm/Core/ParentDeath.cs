using System.Globalization;
using System.Runtime.InteropServices;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// Dying with a parent process: the kernel's parent-death signal (prctl PR_SET_PDEATHSIG, Linux) and the parent
/// chain read from /proc. The signal is delivered when the thread that started this process exits, so a parent
/// must start its children from a thread that lives as long as they should (the launcher's main thread does).
/// </summary>
internal static partial class ParentDeath
{
    public const int SigKill = 9, SigTerm = 15;
    private const int PrSetPdeathsig = 1;

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int SysPrctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int SysGetPpid();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int sig);

    /// <summary>The parent's pid (1 or a subreaper once the parent died).</summary>
    public static int ParentPid => SysGetPpid();

    /// <summary>
    /// Asks for <paramref name="signal"/> when the parent dies, then checks the parent is still
    /// <paramref name="expectedParent"/> (it may have died before the request); false when it is not or the platform
    /// has no parent-death signal.
    /// </summary>
    public static bool Arm(int expectedParent, int signal)
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (SysPrctl(PrSetPdeathsig, (nuint)signal, 0, 0, 0) != 0) return false;
        return SysGetPpid() == expectedParent;
    }

    /// <summary>True when <paramref name="pid"/> is this process's parent, grandparent, … (pid 1 excluded).</summary>
    public static bool IsAncestor(int pid)
    {
        int p = SysGetPpid();
        for (int depth = 0; depth < 64 && p > 1; depth++)
        {
            if (p == pid) return true;
            p = ParentOf(p);
        }
        return false;
    }

    /// <summary>Ends this process at once with SIGKILL, after one line on stderr.</summary>
    public static void KillSelf(string why)
    {
        try { Console.Error.WriteLine(why); Console.Error.Flush(); } catch (IOException) { }
        SysKill(Environment.ProcessId, SigKill);
        Environment.FailFast(why); // not reached
    }

    private static int ParentOf(int pid)
    {
        try
        {
            // "pid (comm) S ppid ...": comm may contain spaces or ')', so parse after the last ')'.
            var text = File.ReadAllText($"/proc/{pid}/stat");
            int close = text.LastIndexOf(')');
            var fields = text[(close + 2)..].Split(' ');
            return int.Parse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return 0;
        }
    }
}
