using DeepSpeedSharp.Config.Schema;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace DeepSpeedSharp.Cli;

/// <summary>
/// Runs `dss`: builds the System.CommandLine tree of the <see cref="ICliCommand"/>s (commands of several words, such as
/// "bench comm", under a group command "bench"), parses, and turns the outcome into one exit code: 0 (including
/// `--help` on any command), 2 for a usage error (one line per problem naming the flag, then a usage line), 1 when the
/// command fails (one line, <c>dss CMD: error: MSG</c>). <see cref="IPassThroughCliCommand"/>s parse their own arguments.
/// </summary>
public static class CliHost
{
    /// <summary>Descriptions of the group commands that hold commands of several words.</summary>
    private static readonly Dictionary<string, string> GroupSummaries = new(StringComparer.Ordinal)
    {
        ["bench"] = "benchmarks: collectives (comm), the CPU Adam step (adam), training the sample GPT (train)",
        ["checkpoint"] = "work on a saved training checkpoint: consolidate it into one file or a Hugging Face directory (export) or verify it (inspect)",
    };

    /// <summary>
    /// The command tree: a root "dss" holding every command (and a group command for the first word of each command of
    /// several words); every command answers -h/--help.
    /// </summary>
    public static Command BuildTree(IEnumerable<ICliCommand> commands)
    {
        var root = new Command("dss", "DeepSpeedSharp's command-line tool");
        root.Options.Add(new HelpOption());
        foreach (var c in commands.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            var words = c.Name.Split(' ');
            var parent = root;
            foreach (var word in words[..^1])
            {
                var group = parent.Subcommands.FirstOrDefault(s => s.Name == word);
                if (group == null)
                {
                    group = new Command(word, GroupSummaries.GetValueOrDefault(word, $"the {word} commands"));
                    parent.Subcommands.Add(group);
                }
                parent = group;
            }
            var command = c.CreateCommand();
            if (command.Name != words[^1])
                throw new InvalidOperationException($"{c.GetType().Name}.CreateCommand() is named '{command.Name}', not '{words[^1]}'.");
            if (string.IsNullOrWhiteSpace(command.Description)) command.Description = c.Summary;
            parent.Subcommands.Add(command);
        }
        return root;
    }

    /// <summary>Runs `dss ARGS...` with <paramref name="commands"/> known; returns the exit code.</summary>
    public static int Run(IReadOnlyList<ICliCommand> commands, IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0 || (args.Count == 1 && args[0] is "-h" or "--help" or "help"))
        {
            PrintUsage(commands, stdout);
            return args.Count == 0 ? 2 : 0;
        }
        if (args[0] == "help") args = [.. args.Skip(1), "--help"]; // dss help bench adam = dss bench adam --help
        var passThrough = commands.OfType<IPassThroughCliCommand>()
            .Where(c => c.Name.Split(' ') is var words && words.Length <= args.Count && words.SequenceEqual(args.Take(words.Length)))
            .MaxBy(c => c.Name.Split(' ').Length);
        if (passThrough != null)
            return Guarded(passThrough.Name, () => passThrough.RunUnparsed(args.Skip(passThrough.Name.Split(' ').Length).ToList(), stdout, stderr), stderr);

        var root = BuildTree(commands);
        var result = root.Parse(args);
        var command = result.CommandResult.Command;
        var path = PathOf(result.CommandResult);
        bool unknownCommand = command.Action == null && result.UnmatchedTokens.Count > 0; // even with --help
        if (unknownCommand || (result.Action is not HelpAction && result.Errors.Count > 0))
        {
            if (command.Action == null) // the root or a group: no command of that name (`dss nope`, `dss help bench nope`)
            {
                var asked = string.Join(' ', args.Where(a => a is not ("--help" or "-h" or "-?")).Take(2));
                var names = commands.Select(c => c.Name).Order(StringComparer.Ordinal).ToList();
                // A typo is a letter or two away; anything further is another word, not worth a guess.
                var near = KeySuggester.Suggest(asked, names.Concat(names.Select(n => n.Split(' ')[0]).Distinct()), maxDistance: 2);
                stderr.WriteLine($"dss: unknown command '{asked}'{(near != null ? $"; did you mean '{near}'?" : ".")} Commands: {string.Join(", ", names)}.");
                return 2;
            }
            foreach (var message in ErrorMessages(result)) stderr.WriteLine($"dss {path}: error: {message}");
            stderr.WriteLine(UsageLine(command, path));
            return 2;
        }
        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        return Guarded(path, () =>
        {
            try
            {
                return result.Invoke(invocation);
            }
            catch (CliUsageException e)
            {
                stderr.WriteLine($"dss {path}: error: {e.Message}");
                stderr.WriteLine(UsageLine(command, path));
                return 2;
            }
        }, stderr);
    }

    /// <summary>Prints `dss NAME --help` for <paramref name="command"/> (the help System.CommandLine renders); returns 0.</summary>
    public static int PrintHelp(ICliCommand command, TextWriter stdout) =>
        BuildTree([command]).Parse([.. command.Name.Split(' '), "--help"]).Invoke(new InvocationConfiguration { Output = stdout });

    /// <summary>`dss` and `dss --help`: the version, and one line per command.</summary>
    private static void PrintUsage(IReadOnlyList<ICliCommand> commands, TextWriter stdout)
    {
        stdout.WriteLine($"dss {Program.Version}\nusage: dss COMMAND [ARGS...]   (dss --version: the version; dss COMMAND --help: its options)\n\ncommands:");
        foreach (var c in commands.OrderBy(c => c.Name, StringComparer.Ordinal)) stdout.WriteLine($"  {c.Name,-18} {c.Summary}");
    }

    /// <summary>Runs <paramref name="run"/>; a failure becomes one line <c>dss NAME: error: MESSAGE</c> and exit code 1.</summary>
    private static int Guarded(string name, Func<int> run, TextWriter stderr)
    {
        try
        {
            return run();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"dss {name}: error: {e.Message}{WithoutLibTorchHint(e)}");
            return 1;
        }
    }

    /// <summary>One message per problem: unknown options and stray arguments by name, then the parser's own messages.</summary>
    private static IEnumerable<string> ErrorMessages(ParseResult result)
    {
        var unmatched = result.UnmatchedTokens;
        foreach (var token in unmatched)
            yield return token.StartsWith('-') ? $"unknown option '{token}'" : $"unexpected argument '{token}'";
        foreach (var error in result.Errors)
        {
            if (unmatched.Any(t => error.Message.Contains($"'{t}'", StringComparison.Ordinal))) continue;
            yield return error.SymbolResult switch
            {
                ArgumentResult a when a.Tokens.Count < a.Argument.Arity.MinimumNumberOfValues => $"{a.Argument.Name} is required",
                CommandResult c when c.Command.Arguments.FirstOrDefault(a => a.Arity.MinimumNumberOfValues > 0 && result.GetResult(a) == null) is { } missing
                    => $"{missing.Name} is required",
                _ => error.Message,
            };
        }
    }

    /// <summary>"usage: dss bench train CONFIG... [options]; `dss bench train --help` describes each option".</summary>
    private static string UsageLine(Command command, string path)
    {
        var words = new List<string> { "dss", path };
        foreach (var a in command.Arguments.Where(a => !a.Hidden))
        {
            var name = a.HelpName ?? a.Name.ToUpperInvariant();
            var many = a.Arity.MaximumNumberOfValues > 1 ? "..." : "";
            words.Add(a.Arity.MinimumNumberOfValues > 0 ? name + many : $"[{name}{many}]");
        }
        if (command.Options.Any(o => o is not HelpOption && !o.Hidden)) words.Add("[options]");
        return $"usage: {string.Join(' ', words)}; `dss {path} --help` describes each option";
    }

    /// <summary>"bench adam" for the command result of `dss bench adam`.</summary>
    private static string PathOf(CommandResult result)
    {
        var names = new List<string>();
        for (var r = result; r?.Parent is CommandResult parent; r = parent) names.Insert(0, r.Command.Name);
        return string.Join(' ', names);
    }

    /// <summary>
    /// The installed dss tool leaves libtorch out (the training program brings its own): when a command that computes
    /// with torch fails for that reason, say how to run it instead.
    /// </summary>
    private static string WithoutLibTorchHint(Exception e) =>
        e is InvalidOperationException && e.Message == DeepSpeedSharp.Native.TorchRuntime.FailureReason && !Launcher.EnvironmentReport.CarriesLibTorch()
            ? " The dss tool does not carry libtorch: run this command from a clone of the repository " +
              "(dotnet run --project src/DeepSpeedSharp.Cli -c Release -- ...)."
            : "";
}
