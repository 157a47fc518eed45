using System.Diagnostics;
using System.Text;

namespace DeepSpeedSharp.Tests.Packaging;

/// <summary>
/// Runs a command (dotnet, the installed dss tool) as a user's shell would, in a given folder, with the test host's
/// MSBuild variables removed (so a nested build resolves the SDK on its own), no build servers left behind, and a time limit.
/// </summary>
internal sealed class CommandRunner
{
    private readonly Dictionary<string, string?> _env;
    private readonly Action<string> _log;

    /// <param name="env">Variables to set (null removes one).</param>
    /// <param name="log">Receives one line per command: what ran and how long it took.</param>
    public CommandRunner(IReadOnlyDictionary<string, string?> env, Action<string> log)
    {
        _env = new Dictionary<string, string?>(env)
        {
            ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
            ["MSBUILDDISABLENODEREUSE"] = "1",
            ["UseSharedCompilation"] = "false",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
        };
        _log = log;
    }

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>; fails the test (with the output) on a non-zero exit or a time-out.</summary>
    public string Run(string workingDirectory, string file, params string[] args) => RunAllowingFailure(workingDirectory, file, args) switch
    {
        (0, var output) => output,
        var (code, output) => throw new Xunit.Sdk.XunitException($"`{file} {string.Join(' ', args)}` exited with {code}:\n{output}"),
    };

    /// <summary>Runs a command and returns its exit code and combined output.</summary>
    public (int ExitCode, string Output) RunAllowingFailure(string workingDirectory, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        foreach (var (k, v) in _env)
            if (v == null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        var watch = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var output = new StringBuilder();
        var gate = new object();
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (gate) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (gate) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new Xunit.Sdk.XunitException($"`{file} {string.Join(' ', args)}` did not finish in 5 minutes:\n{output}");
        }
        p.WaitForExit();
        _log($"{watch.Elapsed.TotalSeconds,6:F1} s  {Path.GetFileName(file)} {string.Join(' ', args)}");
        lock (gate) return (p.ExitCode, output.ToString());
    }
}
