using System.Diagnostics;
using System.Text;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>What a finished child process left: its exit code, its output, and whether it was killed at the time limit.</summary>
public sealed record ChildOutcome(int ExitCode, string Stdout, string Stderr, bool TimedOut)
{
    /// <summary>Both streams, for assertion messages.</summary>
    public string Output => Stdout + Stderr;
}

/// <summary>
/// The one way the tests start a process (ranks, samples, the dss tool, dotnet builds, shell scripts): arguments as a list,
/// environment overrides (a null value removes the variable), both streams captured as they come, and the whole process
/// tree killed at the time limit or on dispose. <c>Infrastructure/TestTierTests</c> holds every other test file to it.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _out = new(), _err = new();

    /// <summary>Starts <paramref name="file"/> with <paramref name="args"/>.</summary>
    public ChildProcess(string file, IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string?>? env = null)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory != null) psi.WorkingDirectory = workingDirectory;
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string?>())
        {
            if (v == null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        _p = new Process { StartInfo = psi };
        _p.OutputDataReceived += (_, d) => { if (d.Data != null) lock (_out) _out.AppendLine(d.Data); };
        _p.ErrorDataReceived += (_, d) => { if (d.Data != null) lock (_err) _err.AppendLine(d.Data); };
        if (!_p.Start()) throw new InvalidOperationException($"could not start {file}");
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    /// <summary>Runs <paramref name="file"/> to its end (at most <paramref name="timeout"/>, default 5 minutes; then the tree is killed).</summary>
    public static ChildOutcome Run(string file, IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string?>? env = null,
        TimeSpan? timeout = null)
    {
        using var child = new ChildProcess(file, args, workingDirectory, env);
        bool timedOut = !child.WaitForExit(timeout ?? TimeSpan.FromMinutes(5));
        if (timedOut) child.Kill();
        return child.Outcome(timedOut);
    }

    /// <summary>Runs <c>dotnet</c> with <paramref name="args"/> (a program's dll first), one OpenMP thread unless <paramref name="env"/> says otherwise.</summary>
    public static ChildOutcome Dotnet(IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string?>? env = null, TimeSpan? timeout = null)
    {
        var withThreads = new Dictionary<string, string?> { ["OMP_NUM_THREADS"] = "1" };
        foreach (var (k, v) in env ?? new Dictionary<string, string?>()) withThreads[k] = v;
        return Run("dotnet", args, workingDirectory, withThreads, timeout);
    }

    /// <summary>The process id.</summary>
    public int Pid => _p.Id;

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => _p.HasExited;

    /// <summary>The exit code (after exit).</summary>
    public int ExitCode => _p.ExitCode;

    /// <summary>Standard output so far.</summary>
    public string Stdout { get { lock (_out) return _out.ToString(); } }

    /// <summary>Standard error so far.</summary>
    public string Stderr { get { lock (_err) return _err.ToString(); } }

    /// <summary>Waits for the exit and for the output to be read; false at the time limit.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout)) return false;
        _p.WaitForExit(); // drains the asynchronous readers
        return true;
    }

    /// <summary>Kills the process and its descendants and waits for it.</summary>
    public void Kill()
    {
        try { if (!_p.HasExited) _p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { } // exited meanwhile
        _p.WaitForExit();
    }

    /// <summary>The outcome of the exited process.</summary>
    public ChildOutcome Outcome(bool timedOut = false) => new(_p.ExitCode, Stdout, Stderr, timedOut);

    /// <summary>Kills what is still running.</summary>
    public void Dispose()
    {
        Kill();
        _p.Dispose();
    }
}
