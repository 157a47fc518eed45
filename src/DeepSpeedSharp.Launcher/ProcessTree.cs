using System.Globalization;
using System.Runtime.InteropServices;

namespace DeepSpeedSharp.Launcher;

/// <summary>Linux process helpers the launcher needs: signals by pid, parent pid, and a process's descendants from /proc.</summary>
public static partial class ProcessTree
{
    /// <summary>SIGINT (Ctrl-C).</summary>
    public const int SigInt = 2;
    /// <summary>SIGKILL.</summary>
    public const int SigKill = 9;
    /// <summary>SIGTERM.</summary>
    public const int SigTerm = 15;
    /// <summary>SIGCONT: resumes a stopped process (so that it can act on a SIGTERM it was sent).</summary>
    public const int SigCont = 18;
    /// <summary>SIGSTOP.</summary>
    public const int SigStop = 19;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int SysGetPpid();

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static unsafe partial int SysSigEmptySet(byte* set);

    [LibraryImport("libc", EntryPoint = "sigaddset")]
    private static unsafe partial int SysSigAddSet(byte* set, int signal);

    [LibraryImport("libc", EntryPoint = "pthread_sigmask")]
    private static unsafe partial int SysPthreadSigmask(int how, byte* set, byte* oldSet);

    /// <summary>
    /// Unblocks SIGINT, SIGTERM and SIGCHLD for the calling thread (and the processes it starts). pdsh's exec module
    /// starts its commands with SIGINT and SIGCHLD blocked; with SIGCHLD blocked in every thread .NET never reaps
    /// its children, so a node launcher would wait forever for ranks that have already exited.
    /// </summary>
    public static unsafe void UnblockLauncherSignals()
    {
        const int SigUnblock = 1, SigChld = 17;
        byte* set = stackalloc byte[128];
        SysSigEmptySet(set);
        foreach (var sig in new[] { SigInt, SigTerm, SigChld }) SysSigAddSet(set, sig);
        SysPthreadSigmask(SigUnblock, set, null);
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process is gone.</summary>
    public static bool Signal(int pid, int signal) => pid > 0 && SysKill(pid, signal) == 0;

    /// <summary>The pid of this process's parent (changes to 1 or a subreaper when the parent dies).</summary>
    public static int ParentPid() => SysGetPpid();

    /// <summary>The state letter of <paramref name="pid"/> from /proc (R, S, D, T stopped, t traced, Z), or null when it is gone.</summary>
    public static char? State(int pid) => ReadStat(pid)?.State;

    /// <summary>True while <paramref name="pid"/> exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        var stat = ReadStat(pid);
        return stat != null && stat.Value.State != 'Z';
    }

    /// <summary><paramref name="pid"/> followed by all its descendants (children first by level).</summary>
    public static IReadOnlyList<int> WithDescendants(int pid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int p)) continue;
            if (ReadStat(p) is not { } s) continue;
            if (!children.TryGetValue(s.Parent, out var list)) children[s.Parent] = list = [];
            list.Add(p);
        }
        var result = new List<int> { pid };
        for (int i = 0; i < result.Count; i++)
            if (children.TryGetValue(result[i], out var kids)) result.AddRange(kids.Where(k => !result.Contains(k)));
        return result;
    }

    private static (char State, int Parent)? ReadStat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        // "pid (comm) S ppid ...": comm may contain spaces or ')', so parse after the last ')'.
        int close = text.LastIndexOf(')');
        if (close < 0) return null;
        var fields = text[(close + 2)..].Split(' ');
        if (fields.Length < 2 || !int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int parent)) return null;
        return (fields[0][0], parent);
    }
}
