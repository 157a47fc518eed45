using System.CommandLine;
using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss launch [flags] PROGRAM [ARGS...]`: DeepSpeed's `deepspeed` launcher (see docs/launcher.md). Its arguments are
/// parsed by <see cref="LaunchOptions.Parse"/>, DeepSpeed's way (<c>--flag value</c> or <c>--flag=value</c>, flags before
/// PROGRAM, everything after PROGRAM passed to it untouched); the System.CommandLine command built from
/// <see cref="LaunchFlags"/> serves `dss launch --help`.
/// </summary>
public sealed class LaunchCommand : IPassThroughCliCommand
{
    /// <inheritdoc />
    public string Name => "launch";

    /// <inheritdoc />
    public string Summary => "start PROGRAM on every rank (local, pdsh, openmpi or mpich), like `deepspeed`";

    /// <inheritdoc />
    public Command CreateCommand()
    {
        var command = new Command(Name,
            "Start PROGRAM on every rank, like DeepSpeed's `deepspeed` launcher: on this machine, or on the hosts of a hostfile " +
            "through pdsh, OpenMPI or MPICH. Flags go before PROGRAM, as --flag VALUE or --flag=VALUE; everything after PROGRAM " +
            "is passed to it untouched, after --local_rank=N. See docs/launcher.md.")
        {
            new Argument<string>("PROGRAM")
            {
                Description = "a .NET assembly (X.dll, run with dotnet), a project directory (built once with dotnet build -c Release) or any executable",
            },
            new Argument<string[]>("ARGS") { Description = "the program's own arguments, passed through untouched", Arity = ArgumentArity.ZeroOrMore },
        };
        foreach (var flag in LaunchFlags.All)
        {
            // The flags dss launch passes to its own per-node processes are accepted but not listed.
            Option option = flag.ValueName == null
                ? new Option<bool>(flag.Name, flag.Aliases) { Description = flag.Description, Hidden = flag.Internal }
                : new Option<string>(flag.Name, flag.Aliases) { Description = flag.Description, HelpName = flag.ValueName, Hidden = flag.Internal };
            command.Options.Add(option);
        }
        return command;
    }

    /// <inheritdoc />
    public int RunUnparsed(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (LaunchFlags.AskForHelp(args))
        {
            // System.CommandLine writes options last in the usage line; dss launch takes its flags before PROGRAM.
            var help = new StringWriter();
            int code = CliHost.PrintHelp(this, help);
            stdout.Write(help.ToString().Replace("dss launch <PROGRAM> [<ARGS>...] [options]", "dss launch [options] <PROGRAM> [<ARGS>...]", StringComparison.Ordinal));
            return code;
        }
        try
        {
            return LaunchRunner.Run(args, LaunchRunner.CurrentDssCommand(), stdout, stderr);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            const string prefix = "dss launch: ";
            stderr.WriteLine($"{prefix}error: {(e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message[prefix.Length..] : e.Message)}");
            return 2;
        }
    }
}
