using System.CommandLine;

namespace DeepSpeedSharp.Cli;

/// <summary>
/// The base of the `dss` subcommands: a command built with System.CommandLine (<see cref="CreateCommand"/>), and
/// <see cref="Run(IReadOnlyList{string}, TextWriter, TextWriter)"/> to run it in-process exactly as `dss NAME ARGS...` would.
/// </summary>
public abstract class CliCommand : ICliCommand
{
    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract string Summary { get; }

    /// <inheritdoc />
    public abstract Command CreateCommand();

    /// <summary>Runs `dss NAME ARGS...` on the console.</summary>
    public int Run(IReadOnlyList<string> args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs `dss NAME ARGS...` with explicit writers (for tests): help, usage errors (exit 2), errors (exit 1).</summary>
    public int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr) =>
        CliHost.Run([this], [.. Name.Split(' '), .. args], stdout, stderr);

    /// <summary>A usage error found by an action (exit 2), reported like a parse error.</summary>
    protected static CliUsageException Usage(string message) => new(message);
}

/// <summary>A usage error found after parsing (a missing argument, two options that exclude each other): exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);
