using System.Text.RegularExpressions;
using DeepSpeedSharp.Cli;
using DeepSpeedSharp.Tests.Checkpoint;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Cli;

/// <summary>
/// Every <c>dss</c> command, as read from the tool's own definition (<see cref="Program.Commands"/>), run as a user
/// would: with only its required arguments (and the smallest step counts where a flag allows; never a flag whose default
/// is under test), it prints its result — for <c>bench adam</c> one row per default size × thread count — and with no
/// arguments it either prints its result or fails with an error line naming the command. Never a silent empty success.
/// A new command fails this test until it is given its required arguments and its result here.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public partial class EveryCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dss-every-command").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Bin => AppContext.BaseDirectory;

    [GeneratedRegex(@"^\s+\d+[KMG]?\s+\d+\s+\d", RegexOptions.Multiline)]
    private static partial Regex AdamRow();

    [GeneratedRegex(@"^\s+\d+ [KMG]?B\s+\d+\s+\d", RegexOptions.Multiline)]
    private static partial Regex CommRow();

    [GeneratedRegex(@"^\s+([0-3])\s+(none|optimizer)", RegexOptions.Multiline)]
    private static partial Regex EstimateRow();

    /// <summary>Each command's required arguments and what its result must show.</summary>
    private Dictionary<string, (string[] Args, Func<string, bool> PrintsResult)> Cases()
    {
        var config = Path.Combine(_dir, "ds.json");
        File.WriteAllText(config, """{"train_micro_batch_size_per_gpu": 2, "steps_per_print": 100, "zero_optimization": {"stage": 1}}""");
        var ckpt = Path.Combine(_dir, "ckpt");
        var saved = CrashingSaveRun.Start(Path.Combine(_dir, "loss.jsonl"), 2, $"--save-dir {ckpt} --save-every 2");
        Assert.True(saved.Ranks.All(r => r.ExitCode == 0), saved.Output);
        var exported = Path.Combine(_dir, "model.safetensors");
        return new(StringComparer.Ordinal)
        {
            // The default sizes (10M, 100M) × the default thread counts (1, 2): four rows.
            ["bench adam"] = (["--steps", "1", "--warmup", "0"], o => AdamRow().Matches(o).Count == 4),
            // The default sizes 1M, 16M, 64M: three rows (a world of one when not started under dss launch).
            ["bench comm"] = (["--iters", "1", "--warmup", "0"], o => CommRow().Matches(o).Count == 3),
            ["bench train"] = ([config, "--steps", "4", "--warmup", "2", "--model", GptRun.SmallModel], o => o.Contains("\nds.json ", StringComparison.Ordinal)),
            ["checkpoint export"] = ([ckpt, "--out", exported], _ => File.Exists(exported) && new FileInfo(exported).Length > 0),
            ["checkpoint inspect"] = ([ckpt], o => o.Contains("global_step2", StringComparison.Ordinal) && o.Contains("all checksums verified", StringComparison.Ordinal)),
            // Every stage by default: rows for stages 0 to 3.
            ["estimate"] = (["--params", "10M"], o => o.Contains("10,000,000 parameters", StringComparison.Ordinal) &&
                                                      EstimateRow().Matches(o).Select(m => m.Groups[1].Value).Distinct().Count() == 4),
            ["launch"] = ([Path.Combine(Bin, "DeepSpeedSharp.TestWorker.dll"), "launch-probe"], o => o.Contains("RANK=0", StringComparison.Ordinal)),
            ["report"] = ([], o => o.Contains("--- versions ---", StringComparison.Ordinal)),
            ["validate-config"] = ([config], o => o.Contains($"{config}: ok: ", StringComparison.Ordinal)),
        };
    }

    private static ChildOutcome Dss(string command, IEnumerable<string> args) =>
        ChildProcess.Dotnet([Path.Combine(Bin, "dss.dll"), .. command.Split(' '), .. args], timeout: TimeSpan.FromMinutes(4));

    [Fact]
    public void EveryCommandPrintsItsResultWithItsRequiredArgumentsAndNeverSucceedsSilently()
    {
        var cases = Cases();
        var commands = Program.Commands().Select(c => c.Name).ToList();
        Assert.True(commands.Count >= 9, $"only {commands.Count} commands read from the tool");
        var problems = new List<string>();
        foreach (var name in commands)
        {
            if (!cases.TryGetValue(name, out var c))
            {
                problems.Add($"'{name}' has no case here: give it its required arguments and what its result shows");
                continue;
            }
            var run = Dss(name, c.Args);
            if (run.ExitCode != 0 || !c.PrintsResult(run.Stdout))
                problems.Add($"dss {name} {string.Join(' ', c.Args)}: exit {run.ExitCode}, result {(c.PrintsResult(run.Stdout) ? "printed" : "missing")}:\n{run.Output}");
            if (name == "bench adam") continue; // with no arguments it times 12 steps of 100M parameters: the case above covers its defaults
            var bare = Dss(name, []);
            bool errorLine = bare.Stderr.Split('\n')[0].StartsWith($"dss {name}: error: ", StringComparison.Ordinal);
            bool ok = bare.ExitCode == 0 ? bare.Stdout.Trim().Length > 0 : errorLine && !bare.Output.Contains("   at ", StringComparison.Ordinal);
            if (!ok) problems.Add($"dss {name} (no arguments): exit {bare.ExitCode}, neither a result nor an error line naming the command:\n{bare.Output}");
        }
        Assert.True(problems.Count == 0, string.Join("\n\n", problems));
    }

    /// <summary>Nothing to show is a failure with one line, not "tags: (none) … all checksums verified" and exit 0.</summary>
    [Fact]
    public void ACheckpointCommandOnADirectoryWithoutACheckpointFailsWithOneLine()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        foreach (var (name, args) in new[] { ("checkpoint inspect", new[] { empty }), ("checkpoint export", new[] { empty, "--out", Path.Combine(_dir, "x.safetensors") }) })
        {
            var run = Dss(name, args);
            Assert.Equal(1, run.ExitCode);
            Assert.Equal($"dss {name}: error: '{empty}' holds no checkpoint: no complete tag and no 'latest' file; pass the directory SaveCheckpoint wrote to",
                run.Stderr.Trim());
            Assert.Equal("", run.Stdout.Trim());
        }
    }
}
