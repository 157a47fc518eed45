using System.CommandLine;
using System.CommandLine.Help;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Cli;
using DeepSpeedSharp.Launcher;
using DeepSpeedSharp.Tests.Launcher;

namespace DeepSpeedSharp.Tests.Cli;

/// <summary>
/// `dss` reads like a well-kept .NET tool: every command and subcommand, taken from the command tree itself, answers
/// --help (exit 0) describing each of its options and arguments; an unknown option or a bad value is a usage error
/// (exit 2) whose message names the option.
/// </summary>
public sealed class CliHelpTests
{
    private static readonly Command Tree = CliHost.BuildTree(Program.Commands());

    /// <summary>Every command below the root ("bench", "bench adam", "launch", ...), from the tree the tool runs.</summary>
    private static List<string> Paths()
    {
        var paths = new List<string>();
        void Walk(Command c, string prefix)
        {
            foreach (var sub in c.Subcommands)
            {
                var path = prefix.Length == 0 ? sub.Name : $"{prefix} {sub.Name}";
                paths.Add(path);
                Walk(sub, path);
            }
        }
        Walk(Tree, "");
        return paths;
    }

    /// <summary>Every command and group, as theory data.</summary>
    public static TheoryData<string> CommandPaths() => new(Paths());

    /// <summary>The commands that run something (not the groups "bench" and "checkpoint").</summary>
    public static TheoryData<string> LeafCommandPaths() => new(Paths().Where(p => Find(p).Subcommands.Count == 0));

    private static Command Find(string path) =>
        path.Split(' ').Aggregate(Tree, (c, word) => c.Subcommands.Single(s => s.Name == word));

    private static (int Code, string Out, string Err) Dss(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CliHost.Run(Program.Commands(), args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string Flat(string text) => Regex.Replace(text, @"\s+", " ");

    [Fact]
    public void TheTreeHoldsEveryCommandOfTheTool()
    {
        var paths = Paths().ToHashSet();
        Assert.All(Program.Commands(), c => Assert.Contains(c.Name, paths));
        Assert.Contains("launch", paths);
        Assert.Contains("bench comm", paths);
        Assert.Contains("checkpoint inspect", paths);
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public void HelpExitsZeroAndDescribesEveryOptionAndArgument(string path)
    {
        var command = Find(path);
        var (code, help, err) = Dss([.. path.Split(' '), "--help"]);
        Assert.True(code == 0, $"dss {path} --help exited {code}: {err}");
        Assert.Equal("", err);
        var flat = Flat(help);
        Assert.Contains($"dss {path}", flat);
        Assert.False(string.IsNullOrWhiteSpace(command.Description), $"dss {path} has no description");
        Assert.Contains(Flat(command.Description!), flat);
        foreach (var option in command.Options.Where(o => o is not HelpOption && !o.Hidden))
        {
            Assert.False(string.IsNullOrWhiteSpace(option.Description), $"dss {path}: {option.Name} has no description");
            foreach (var name in option.Aliases.Prepend(option.Name)) Assert.Contains(name, flat);
            Assert.Contains(Flat(option.Description!), flat);
        }
        foreach (var argument in command.Arguments)
        {
            Assert.False(string.IsNullOrWhiteSpace(argument.Description), $"dss {path}: argument {argument.Name} has no description");
            Assert.Contains(Flat(argument.Description!), flat);
        }
        foreach (var sub in command.Subcommands) Assert.Contains(sub.Name, flat);
        // -h and `dss help PATH` give the same text.
        Assert.Equal(help, Dss([.. path.Split(' '), "-h"]).Out);
        Assert.Equal(help, Dss(["help", .. path.Split(' ')]).Out);
    }

    [Theory]
    [MemberData(nameof(LeafCommandPaths))]
    public void AnUnknownOptionIsAUsageErrorNamingIt(string path)
    {
        // Required positional arguments get a placeholder so that the unknown option is the only problem.
        var placeholders = Find(path).Arguments.Where(a => a.Arity.MinimumNumberOfValues > 0).Select(_ => "x.json");
        var (code, _, err) = path == "launch"
            ? Dss("launch", "--no-such-flag", "x.dll")
            : Dss([.. path.Split(' '), .. placeholders, "--no-such-flag"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"dss {path}: error: ", err);
        Assert.Contains("'--no-such-flag'", err);
    }

    [Theory]
    [MemberData(nameof(LeafCommandPaths))]
    public void ANumberOptionGivenAWordIsAUsageErrorNamingIt(string path)
    {
        var numeric = Find(path).Options.Where(o => IsNumber(o.ValueType)).ToList();
        var placeholders = Find(path).Arguments.Where(a => a.Arity.MinimumNumberOfValues > 0).Select(_ => "x.json").ToArray();
        foreach (var option in numeric)
        {
            var (code, _, err) = Dss([.. path.Split(' '), .. placeholders, option.Name, "abc"]);
            Assert.True(code == 2, $"dss {path} {option.Name} abc exited {code}: {err}");
            Assert.Contains($"dss {path}: error: {option.Name} needs ", err);
            Assert.Contains("got 'abc'", err);
            Assert.Contains($"usage: dss {path}", err);
        }
        static bool IsNumber(Type t)
        {
            t = Nullable.GetUnderlyingType(t) ?? (t.IsArray ? t.GetElementType()! : t);
            return t == typeof(int) || t == typeof(long) || t == typeof(double);
        }
    }

    [Theory]
    [InlineData("estimate --params 1M --ranks abc", "--ranks needs a positive integer, got 'abc'")]
    [InlineData("estimate --params 1M --stage 4", "--stage needs 0, 1, 2 or 3, got '4'")]
    [InlineData("estimate --ranks 2", "give exactly one of --params N or --model \"SAMPLE-FLAGS\"")]
    [InlineData("estimate --params 1M --model x", "give exactly one of --params N or --model \"SAMPLE-FLAGS\"")]
    [InlineData("bench comm --op all_sum", "--op needs one of all_reduce, reduce_scatter, all_gather, broadcast, all_to_all, got 'all_sum'")]
    [InlineData("bench adam --params 10Q", "--params needs a comma-separated list of sizes")]
    [InlineData("bench train --steps 5 --warmup 5 a.json", "--warmup (5) must be smaller than --steps (5)")]
    [InlineData("checkpoint export ckpt --out m.safetensors --dtype int8", "--dtype needs one of fp32")]
    [InlineData("checkpoint export ckpt", "--out FILE is required")]
    [InlineData("checkpoint inspect", "DIR is required")]
    [InlineData("validate-config a.json --wrld-size 2", "unknown option '--wrld-size'")]
    [InlineData("report extra", "unexpected argument 'extra'")]
    public void BadValuesAreUsageErrorsNamingTheOption(string args, string expected)
    {
        var (code, _, err) = Dss(args.Split(' '));
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
    }

    [Fact]
    public void RootUsageListsEveryCommand()
    {
        var (code, help, _) = Dss("--help");
        Assert.Equal(0, code);
        Assert.All(Program.Commands(), c => Assert.Contains($"  {c.Name} ", help));
        Assert.Equal(help, Dss("help").Out);
        Assert.Equal(2, Dss().Code);   // no command: the same usage, exit 2
        var (unknown, _, err) = Dss("bench", "nope");
        Assert.Equal(2, unknown);
        Assert.StartsWith("dss: unknown command 'bench nope'. Commands: bench adam, bench comm,", err);
        Assert.Equal(2, Dss("help", "nope").Code);
        Assert.Equal(2, Dss("nope", "--help").Code);
        // Issue 34: a typo gets a suggestion.
        Assert.StartsWith("dss: unknown command 'lauch'; did you mean 'launch'? Commands: ", Dss("lauch").Err);
    }

    /// <summary>Issue 34: a misspelt launcher flag gets a suggestion; DeepSpeed's flags that are not offered say so and what to use.</summary>
    [Fact]
    public void LauncherFlagTyposAndDeepSpeedFlagsNotOfferedAreExplained()
    {
        Assert.Equal("dss launch: unknown flag '--max_restart'; did you mean --max_restarts? Flags go before PROGRAM; run `dss launch --help` for the list.",
            Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--max_restart", "1", "train.dll"])).Message);
        Assert.Equal("dss launch: --autotuning is a DeepSpeed flag this launcher does not offer: autotuning is not implemented; measure configurations with `dss bench train` and `dss estimate`.",
            Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--autotuning", "run", "train.dll"])).Message);
        var help = Dss("launch", "--help").Out;
        Assert.Contains("--max_restarts", help);
        Assert.DoesNotContain("--node_launcher", help); // internal flags are accepted but not listed
        Assert.DoesNotContain("--token_file", help);
    }

    [Fact]
    public void LaunchHelpListsEveryLauncherFlagWithItsDescription()
    {
        var (code, help, _) = Dss("launch", "--help");
        Assert.Equal(0, code);
        var flat = Flat(help);
        foreach (var flag in LaunchFlags.All)
        {
            Assert.False(string.IsNullOrWhiteSpace(flag.Description), flag.Name);
            if (flag.Internal) { Assert.DoesNotContain(flag.Name, flat); continue; } // accepted, not listed
            foreach (var spelling in flag.Spellings) Assert.Contains(spelling, flat);
            Assert.Contains(Flat(flag.Description), flat);
        }
        // Help asked for among the flags, in either position; a --help after PROGRAM belongs to the program.
        Assert.Equal(help, Dss("launch", "--num_gpus", "2", "-h").Out);
        Assert.False(LaunchFlags.AskForHelp(["--num_gpus", "2", "train.dll", "--help"]));
        Assert.False(LaunchFlags.AskForHelp(["--launcher_args", "x", "train.dll", "-h"]));
    }

    [Fact]
    public void EveryLauncherFlagInTheHelpIsOneTheParserAccepts()
    {
        foreach (var flag in LaunchFlags.All.Where(f => f.Name != ChildGuard.Flag))
            foreach (var spelling in flag.Spellings)
            {
                string value = flag.Name switch { "--launcher" => "mpich", "--master_addr" => "10.0.0.1", _ => "1" };
                // A flag that works only with another is given with it (--bind_core_list with --bind_cores_to_rank).
                string[] with = flag.Name == "--bind_core_list" ? ["--bind_cores_to_rank"] : [];
                string[] args = flag.ValueName == null ? [.. with, spelling, "train.dll", "--x"] : [.. with, spelling, value, "train.dll", "--x"];
                var o = LaunchOptions.Parse(args);
                Assert.Equal(("train.dll", "--x"), (o.Program, o.ProgramArgs.Single()));
                if (flag.ValueName != null && spelling.StartsWith("--", StringComparison.Ordinal))
                    Assert.Equal("train.dll", LaunchOptions.Parse([.. with, $"{spelling}={value}", "train.dll"]).Program);
            }
        Assert.Contains("must be the first argument", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--num_gpus", "1", ChildGuard.Flag, "x"])).Message);
    }

    [Fact]
    public void TheToolAnswersHelpAndUsageErrorsAsAProcess()
    {
        using (var help = new DssProcess(Path.GetTempPath(), "launch", "--help"))
        {
            Assert.Equal(0, help.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.Contains("--launcher_args <ARGS>", help.Output);
            Assert.DoesNotContain("--child_guard", help.Output); // internal
        }
        using (var unknown = new DssProcess(Path.GetTempPath(), "launch", "--num_gpus=2", "--bogus", "train.dll"))
        {
            Assert.Equal(2, unknown.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.StartsWith("dss launch: error: unknown flag '--bogus'", unknown.Error);
        }
        using (var bad = new DssProcess(Path.GetTempPath(), "launch", "--master_port", "http", "train.dll"))
        {
            Assert.Equal(2, bad.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.Equal("dss launch: error: --master_port needs an integer, got 'http'.", bad.Error.Trim());
        }
        using (var estimate = new DssProcess(Path.GetTempPath(), "estimate", "--params", "1M", "--ranks", "abc"))
        {
            Assert.Equal(2, estimate.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.StartsWith("dss estimate: error: --ranks needs a positive integer, got 'abc'", estimate.Error);
        }
        using (var version = new DssProcess(Path.GetTempPath(), "--version"))
        {
            Assert.Equal(0, version.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.Equal(Program.Version, version.Output.Trim());
        }
    }
}
