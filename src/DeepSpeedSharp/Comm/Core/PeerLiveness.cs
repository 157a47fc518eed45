namespace DeepSpeedSharp.Comm.Core;

/// <summary>Whether a process on this host is still running (not gone and not a zombie).</summary>
internal static class PeerLiveness
{
    public static bool IsAlive(int pid)
    {
        if (pid <= 0) return true; // not yet known: cannot judge
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            if (close < 0 || close + 2 >= stat.Length) return true;
            char state = stat[close + 2];
            return state is not ('Z' or 'X' or 'x');
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return true; }
    }
}
