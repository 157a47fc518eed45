using System.Reflection;

namespace DeepSpeedSharp.Cli;

/// <summary>`dss`: DeepSpeedSharp's command-line tool. Dispatches to the <see cref="ICliCommand"/>s through <see cref="CliHost"/>.</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        // Started by `dss launch` (like DeepSpeed's launcher) a program receives --local_rank=N first; the rank is
        // also in LOCAL_RANK, so dss itself ignores the flag.
        args = args.Where(a => !a.StartsWith("--local_rank=", StringComparison.Ordinal)).ToArray();
        if (args is ["--version"])
        {
            Console.WriteLine(Version);
            return 0;
        }
        return CliHost.Run(Commands(), args, Console.Out, Console.Error);
    }

    /// <summary>Every <see cref="ICliCommand"/> of this assembly, by name.</summary>
    public static IReadOnlyList<ICliCommand> Commands() =>
        typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => (ICliCommand)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();

    /// <summary>The tool's version (the package version, without the source revision).</summary>
    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(Program).Assembly.GetName().Version?.ToString() ?? "unknown";
}
