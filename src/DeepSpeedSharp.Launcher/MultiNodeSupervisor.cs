using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// Runs a multi-node runner's command (pdsh or mpirun) on the user's machine: passes its output through,
/// fails fast across hosts (when pdsh reports a host's command exited non-zero, the kill command stops the
/// other hosts' launchers), and on SIGINT/SIGTERM stops every host. Exits with the first failing host's code.
/// </summary>
public static partial class MultiNodeSupervisor
{
    private const string Tag = "[dss launch]";

    [GeneratedRegex(@"^pdsh@[^:]*: (\S+): .* exited with exit code (\d+)\s*$")]
    private static partial Regex PdshExit();

    [GeneratedRegex(@"^pdsh@[^:]*: (\S+): .* killed by signal (\d+)\s*$")]
    private static partial Regex PdshKilled();

    /// <summary>Parses pdsh's "pdsh@me: host: cmd exited with exit code N" line into (host, N).</summary>
    public static (string Host, int Code)? ParseRemoteExit(string line)
    {
        var m = PdshExit().Match(line);
        return m.Success ? (m.Groups[1].Value, int.Parse(m.Groups[2].Value)) : null;
    }

    /// <summary>
    /// A host whose node launcher itself was lost: pdsh reports it "killed by signal N" (exec module), or ssh ended
    /// with 255 (the connection or the host is gone). A node launcher that stopped its ranks after one failed exits
    /// with that rank's code instead: its host is fine.
    /// </summary>
    public static string? ParseLostHost(string line)
    {
        var killed = PdshKilled().Match(line);
        if (killed.Success) return killed.Groups[1].Value;
        return ParseRemoteExit(line) is { Code: 255 } e ? e.Host : null;
    }

    /// <summary>Runs <paramref name="command"/> to completion; returns the launcher's exit code.</summary>
    public static int Run(MultiNodeCommand command, double graceSeconds, TextWriter stdout, TextWriter stderr, bool handleSignals = true) =>
        RunOnce(command, graceSeconds, stdout, stderr, handleSignals).Code;

    /// <summary>Runs <paramref name="command"/> to completion; says how it ended (for <c>--max_restarts</c>).</summary>
    public static JobOutcome RunOnce(MultiNodeCommand command, double graceSeconds, TextWriter stdout, TextWriter stderr, bool handleSignals = true)
    {
        var lost = new List<string>();
        foreach (var (path, text) in command.Files) File.WriteAllText(path, text);
        int signalled = 0;
        var registrations = new List<PosixSignalRegistration>();
        if (handleSignals)
            foreach (var (sig, num) in new[] { (PosixSignal.SIGINT, ProcessTree.SigInt), (PosixSignal.SIGTERM, ProcessTree.SigTerm) })
                registrations.Add(PosixSignalRegistration.Create(sig, ctx => { ctx.Cancel = true; Interlocked.CompareExchange(ref signalled, num, 0); }));
        var sink = new object();
        (string Host, int Code)? failure = null;
        var psi = new ProcessStartInfo(command.Command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in command.Command.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in command.Environment) psi.Environment[k] = v;
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (sink) stdout.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (sink)
            {
                stderr.WriteLine(e.Data);
                var gone = ParseLostHost(e.Data);
                if (gone != null && !lost.Contains(gone)) lost.Add(gone);
                if (failure == null && ParseRemoteExit(e.Data) is { } f && f.Code != 0) failure = f;
                if (failure == null && gone != null) failure = (gone, 128 + 9);
            }
        };
        try
        {
            try { process.Start(); }
            catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException($"could not start '{command.Command[0]}': {e.Message}"); }
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            bool stopping = false;
            while (!process.WaitForExit(50))
            {
                int sig = Volatile.Read(ref signalled);
                (string Host, int Code)? failed;
                lock (sink) failed = failure;
                if (stopping || (sig == 0 && failed == null)) continue;
                stopping = true;
                lock (sink)
                    stderr.WriteLine(sig != 0
                        ? $"{Tag} received {(sig == ProcessTree.SigInt ? "SIGINT" : "SIGTERM")}; stopping every host."
                        : $"{Tag} host {failed!.Value.Host} failed with exit code {failed.Value.Code}; stopping the other hosts.");
                Stop(process, command.KillCommand, graceSeconds, sig != 0);
            }
            process.WaitForExit();
            int signal = Volatile.Read(ref signalled);
            lock (sink)
            {
                if (signal != 0) return new JobOutcome(128 + signal, null, [], Signalled: true);
                return new JobOutcome(failure?.Code ?? process.ExitCode, failure?.Host, [.. lost], Signalled: false);
            }
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
            foreach (var path in command.Files.Keys) File.Delete(path);
        }
    }

    private static void Stop(Process process, IReadOnlyList<string>? killCommand, double graceSeconds, bool signalRunner)
    {
        if (killCommand != null) RunQuietly(killCommand, TimeSpan.FromSeconds(10));
        if (killCommand == null || signalRunner) ProcessTree.Signal(process.Id, ProcessTree.SigTerm);
        _ = Task.Run(() =>
        {
            if (process.WaitForExit(TimeSpan.FromSeconds(graceSeconds + 5))) return;
            foreach (var pid in ProcessTree.WithDescendants(process.Id)) ProcessTree.Signal(pid, ProcessTree.SigKill);
        });
    }

    private static void RunQuietly(IReadOnlyList<string> command, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout)) p.Kill(entireProcessTree: true);
        }
        catch (System.ComponentModel.Win32Exception) { }
    }
}

/// <summary>How one run of a job ended.</summary>
/// <param name="Code">The launcher's exit code (0: every rank finished).</param>
/// <param name="FailedHost">The host whose failure ended it, when known.</param>
/// <param name="LostHosts">Hosts whose node launcher itself was lost (killed, or unreachable over ssh).</param>
/// <param name="Signalled">True when the user stopped the job (SIGINT/SIGTERM to the launcher): never restarted.</param>
public sealed record JobOutcome(int Code, string? FailedHost, IReadOnlyList<string> LostHosts, bool Signalled);
