using System.Diagnostics;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// MASTER_ADDR for a multi-node run without --master_addr, found as DeepSpeed does: the first address printed by
/// <c>hostname -I</c> on the first host (through ssh; run locally when pdsh's exec module makes every "host" local,
/// or when the first host is localhost), inside --node_wrapper's words when given.
/// </summary>
public static class MasterAddress
{
    /// <summary>Resolves the address of <paramref name="firstHost"/>.</summary>
    /// <exception cref="InvalidOperationException">No address could be found; the message says to pass --master_addr.</exception>
    public static string Resolve(string firstHost, LaunchOptions o, IMultiNodeRunner runner, bool dryRun)
    {
        if (firstHost is "localhost" or "127.0.0.1") return "127.0.0.1";
        bool local = runner is PdshRunner && PdshRunner.RemoteCommandType(ShellWords.Split(o.LauncherArgs)) == "exec";
        var command = new List<string>();
        if (!local)
        {
            command.Add("ssh");
            if (o.SshPort is { } port) command.AddRange(["-p", port.ToString()]);
            command.Add(firstHost);
        }
        command.AddRange(LaunchOptions.NodeWrapperWords(o.NodeWrapper).Select(w => w.Replace("%h", firstHost)));
        command.AddRange(["hostname", "-I"]);
        if (dryRun) return $"$({ShellWords.Join(command)})";
        string output = "";
        int code = -1;
        try
        {
            var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            _ = p.StandardError.ReadToEndAsync();
            var read = p.StandardOutput.ReadToEndAsync();
            if (p.WaitForExit(TimeSpan.FromSeconds(30))) { code = p.ExitCode; output = read.Result; }
            else p.Kill(entireProcessTree: true);
        }
        catch (System.ComponentModel.Win32Exception) { }
        var first = output.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        if (code != 0 || first == null)
            throw new InvalidOperationException($"Unable to detect a suitable master address via `{ShellWords.Join(command)}` (exit code {code}); please specify one with --master_addr.");
        return first;
    }
}
