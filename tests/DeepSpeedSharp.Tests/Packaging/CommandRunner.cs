using System.Diagnostics;
using System.Text;

using DeepSpeedSharp.Tests.Infrastructure;

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
        var env = new Dictionary<string, string?>(_env);
        foreach (var key in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)))
            env.TryAdd(key, null);
        var watch = Stopwatch.StartNew();
        var run = ChildProcess.Run(file, args, workingDirectory, env, TimeSpan.FromMinutes(5));
        if (run.TimedOut) throw new Xunit.Sdk.XunitException($"`{file} {string.Join(' ', args)}` did not finish in 5 minutes:\n{run.Output}");
        _log($"{watch.Elapsed.TotalSeconds,6:F1} s  {Path.GetFileName(file)} {string.Join(' ', args)}");
        return (run.ExitCode, run.Output);
    }
}
