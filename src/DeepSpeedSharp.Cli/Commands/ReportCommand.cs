using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>`dss report`: versions, native library status, backends, cores and memory (like `ds_report`).</summary>
public sealed class ReportCommand : ICliCommand
{
    /// <inheritdoc />
    public string Name => "report";

    /// <inheritdoc />
    public string Summary => "print the environment: versions, native libraries, backends, cores, memory";

    /// <inheritdoc />
    public int Run(string[] args)
    {
        var items = EnvironmentReport.Collect();
        Console.Write(EnvironmentReport.Format(items));
        return items.Any(i => i.Value.StartsWith("NOT loaded", StringComparison.Ordinal)) ? 1 : 0;
    }
}
