using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>`dss launch [flags] PROGRAM [ARGS...]`: DeepSpeed's `deepspeed` launcher (see docs/launcher.md).</summary>
public sealed class LaunchCommand : ICliCommand
{
    /// <inheritdoc />
    public string Name => "launch";

    /// <inheritdoc />
    public string Summary => "start PROGRAM on every rank (local, pdsh, openmpi or mpich), like `deepspeed`";

    /// <inheritdoc />
    public int Run(string[] args)
    {
        try
        {
            return LaunchRunner.Run(args, LaunchRunner.CurrentDssCommand(), Console.Out, Console.Error);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            const string prefix = "dss launch: ";
            Console.Error.WriteLine($"{prefix}error: {(e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message[prefix.Length..] : e.Message)}");
            return 2;
        }
    }
}
