using System.CommandLine;
using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>`dss report`: versions, native library status, backends, cores and memory (like `ds_report`).</summary>
public sealed class ReportCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "report";

    /// <inheritdoc />
    public override string Summary => "print the environment: versions, native libraries, backends, cores, memory";

    /// <inheritdoc />
    public override Command CreateCommand()
    {
        var command = new Command(Name, "Print the environment, like DeepSpeed's ds_report: versions, native library status, communication " +
                                        "backends, cores and memory. Exit 1 when a native library does not load.");
        command.SetAction(r =>
        {
            var items = EnvironmentReport.Collect();
            r.InvocationConfiguration.Output.Write(EnvironmentReport.Format(items));
            return items.Any(i => i.Value.StartsWith("NOT loaded", StringComparison.Ordinal)) ? 1 : 0;
        });
        return command;
    }
}
