using System.Text.RegularExpressions;
using DeepSpeedSharp.Tests.Config;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// The test tiers: the fast tier (<c>dotnet test --filter "Tier!=Full"</c>) runs in this process only; every test class
/// that starts processes — ranks, samples, the launcher, packaging commands — carries <c>[Trait("Tier", "Full")]</c> and
/// runs in the full suite (plain <c>dotnet test</c>, what <c>.ci/run</c> runs). This test keeps new classes honest.
/// </summary>
public partial class TestTierTests
{
    [GeneratedRegex(@"RankProcesses\.(Run|RunMpi)|SampleProcess\.|CheckpointRun\.|GptRun\.|LlamaRun\.|DssProcess\.|CommandRunner|CrashingSaveRun\.|ChildProcess|Process\.Start|ProcessStartInfo|\[MpiFact|\[PdshFact|\[MpiTheory")]
    private static partial Regex StartsProcesses();

    [GeneratedRegex(@"\[(Fact|Theory|MpiFact|PdshFact|MpiTheory)\b")]
    private static partial Regex HasTests();

    [GeneratedRegex(@"^public (sealed |partial |abstract )*class (\w+)", RegexOptions.Multiline)]
    private static partial Regex ClassDeclaration();

    [Fact]
    public void ClassesThatStartProcessesAreInTheFullTier()
    {
        var root = ConfigTestHelpers.RepoRoot() ?? throw new InvalidOperationException($"no repository root above {AppContext.BaseDirectory}");
        var testDir = Path.Combine(root, "tests", "DeepSpeedSharp.Tests");
        var missing = new List<string>();
        int full = 0;
        foreach (var file in Directory.EnumerateFiles(testDir, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(testDir, file);
            if (relative.StartsWith("bin", StringComparison.Ordinal) || relative.StartsWith("obj", StringComparison.Ordinal) ||
                relative.StartsWith("Infrastructure", StringComparison.Ordinal)) continue;
            var text = File.ReadAllText(file);
            if (!StartsProcesses().IsMatch(text) || !HasTests().IsMatch(text)) continue;
            foreach (Match m in ClassDeclaration().Matches(text))
            {
                var before = text[..m.Index].Split('\n').TakeLast(7);
                if (before.Any(l => l.Contains("[Trait(\"Tier\", \"Full\")]", StringComparison.Ordinal))) full++;
                else missing.Add($"{relative}: class {m.Groups[2].Value}");
            }
        }
        Assert.True(missing.Count == 0, "test classes that start processes need [Trait(\"Tier\", \"Full\")]: " + string.Join("; ", missing));
        Assert.True(full >= 30, $"only {full} classes are in the full tier; the scan is not finding them");
    }

    /// <summary>One helper starts processes for every test (<see cref="ChildProcess"/>): no other test file builds a
    /// ProcessStartInfo or calls Process.Start.</summary>
    [Fact]
    public void OnlyChildProcessStartsProcesses()
    {
        var root = ConfigTestHelpers.RepoRoot() ?? throw new InvalidOperationException($"no repository root above {AppContext.BaseDirectory}");
        var testDir = Path.Combine(root, "tests", "DeepSpeedSharp.Tests");
        var starters = Directory.EnumerateFiles(testDir, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(testDir, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(f => !f.StartsWith("bin/", StringComparison.Ordinal) && !f.StartsWith("obj/", StringComparison.Ordinal))
            .Where(f => File.ReadAllText(Path.Combine(testDir, f)) is var t && (t.Contains("new " + "ProcessStartInfo", StringComparison.Ordinal) ||
                                                                               t.Contains("Process." + "Start(", StringComparison.Ordinal)))
            .Order().ToList();
        Assert.Equal(["Infrastructure/ChildProcess.cs"], starters);
    }
}
