using System.Reflection;

namespace DeepSpeedSharp.Cli;

/// <summary>`dss`: DeepSpeedSharp's command-line tool. Dispatches to the <see cref="ICliCommand"/>s.</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        // Started by `dss launch` (like DeepSpeed's launcher) a program receives --local_rank=N first; the rank is
        // also in LOCAL_RANK, so dss itself ignores the flag.
        args = args.Where(a => !a.StartsWith("--local_rank=", StringComparison.Ordinal)).ToArray();
        var commands = Assembly.GetExecutingAssembly().GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => (ICliCommand)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        if (args is ["--version"])
        {
            Console.WriteLine(Version);
            return 0;
        }
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintUsage(commands);
            return args.Length == 0 ? 2 : 0;
        }
        // A command's name may have several words ("bench comm"): the longest name that prefixes the arguments wins.
        var command = commands
            .Where(c => c.Name.Split(' ') is var words && words.Length <= args.Length && words.SequenceEqual(args[..words.Length]))
            .MaxBy(c => c.Name.Split(' ').Length);
        if (command == null)
        {
            Console.Error.WriteLine($"dss: unknown command '{string.Join(' ', args.Take(2))}'. Commands: {string.Join(", ", commands.Select(c => c.Name))}.");
            return 2;
        }
        try
        {
            return command.Run(args[command.Name.Split(' ').Length..]);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"dss {command.Name}: error: {e.Message}{WithoutLibTorchHint(e)}");
            return 1;
        }
    }

    /// <summary>
    /// The installed dss tool leaves libtorch out (the training program brings its own): when a command that computes
    /// with torch fails for that reason, say how to run it instead.
    /// </summary>
    private static string WithoutLibTorchHint(Exception e) =>
        e is InvalidOperationException && e.Message == DeepSpeedSharp.Native.TorchRuntime.FailureReason
        && !File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libtorch.so"))
        && !File.Exists(Path.Combine(AppContext.BaseDirectory, "libtorch.so"))
            ? " The dss tool does not carry libtorch: run this command from a clone of the repository " +
              "(dotnet run --project src/DeepSpeedSharp.Cli -c Release -- ...)."
            : "";

    /// <summary>The tool's version (the package version, without the source revision).</summary>
    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(Program).Assembly.GetName().Version?.ToString() ?? "unknown";

    private static void PrintUsage(IReadOnlyList<ICliCommand> commands)
    {
        Console.WriteLine($"dss {Version}\nusage: dss COMMAND [ARGS...]   (dss --version: the version)\n\ncommands:");
        foreach (var c in commands) Console.WriteLine($"  {c.Name,-18} {c.Summary}");
    }
}
