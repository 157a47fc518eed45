namespace DeepSpeedSharp.Cli;

/// <summary>
/// One `dss` subcommand. Every non-abstract implementation in this assembly is registered by
/// <see cref="Program"/> through reflection, so adding a subcommand means adding one file.
/// </summary>
public interface ICliCommand
{
    /// <summary>The word after `dss` (e.g. "launch", "validate-config").</summary>
    string Name { get; }

    /// <summary>One line for `dss --help`.</summary>
    string Summary { get; }

    /// <summary>Runs the command; returns the process exit code (0 ok, 1 failure, 2 usage error).</summary>
    int Run(string[] args);
}
