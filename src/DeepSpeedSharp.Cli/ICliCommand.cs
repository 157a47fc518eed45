using System.CommandLine;

namespace DeepSpeedSharp.Cli;

/// <summary>
/// One `dss` subcommand. Every non-abstract implementation in this assembly is registered by
/// <see cref="Program"/> through reflection, so adding a subcommand means adding one file (usually a
/// <see cref="CliCommand"/>).
/// </summary>
public interface ICliCommand
{
    /// <summary>The words after `dss` (e.g. "launch", "validate-config", "bench comm").</summary>
    string Name { get; }

    /// <summary>One line for `dss --help` and the first line of the command's own `--help`.</summary>
    string Summary { get; }

    /// <summary>
    /// The System.CommandLine command (named after the last word of <see cref="Name"/>) with a description for each
    /// option and argument, and the action that runs it: its exit code is the process's (0 ok, 1 failure, 2 usage error).
    /// </summary>
    Command CreateCommand();
}

/// <summary>
/// A subcommand that parses its own arguments because it passes some of them through untouched (<c>dss launch</c>):
/// <see cref="CliHost"/> hands it the arguments after its name instead of parsing them. Its
/// <see cref="ICliCommand.CreateCommand"/> still describes every flag, for <c>--help</c>.
/// </summary>
public interface IPassThroughCliCommand : ICliCommand
{
    /// <summary>Runs with the arguments after the command's name; returns the exit code (2 for a usage error).</summary>
    int RunUnparsed(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr);
}
