using System.Text.RegularExpressions;
using DeepSpeedSharp.Tests.Config;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// The library's layers (docs/architecture.md): a folder of <c>src/DeepSpeedSharp</c> may import (<c>using
/// DeepSpeedSharp.X</c>) only folders of a lower layer. A new folder must be given a layer here. The check reads
/// <c>using</c> directives, so it sees imports, not references through a parent namespace.
/// </summary>
public partial class LayeringTests
{
    private static readonly Dictionary<string, int> Layer = new()
    {
        // foundations: no project imports among them
        ["Native"] = 0, ["Utils"] = 0, ["CommandLine"] = 1, ["IO"] = 0, ["Config"] = 0, ["Optim"] = 0, ["Schedulers"] = 0, ["Profiling"] = 0, ["Data"] = 0,
        ["Comm"] = 1, ["Monitoring"] = 1, ["Precision"] = 1,
        ["Topology"] = 2,
        ["Training"] = 3, ["TensorParallel"] = 3, ["ActivationCheckpointing"] = 3,
        ["Pipeline"] = 4, ["DataParallel"] = 4, ["Checkpoint"] = 4,
        ["Zero"] = 5,
        ["Weights"] = 6, // whole-model weights into every way a rank holds a parameter: slices, stages, ZeroInit partitions
        ["Engine"] = 7,
    };

    [GeneratedRegex(@"^using DeepSpeedSharp\.(\w+)", RegexOptions.Multiline)]
    private static partial Regex ProjectUsing();

    [Fact]
    public void FoldersImportOnlyLowerLayers()
    {
        var root = ConfigTestHelpers.RepoRoot() ?? throw new InvalidOperationException($"no repository root above {AppContext.BaseDirectory}");
        var src = Path.Combine(root, "src", "DeepSpeedSharp");
        var problems = new SortedSet<string>(StringComparer.Ordinal);
        int imports = 0;
        foreach (var file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(src, file);
            var parts = relative.Split(Path.DirectorySeparatorChar);
            if (parts.Length < 2 || parts[0] is "bin" or "obj") continue; // root files (DeepSpeed.cs) sit above every folder
            var folder = parts[0];
            if (!Layer.TryGetValue(folder, out int mine))
            {
                problems.Add($"folder {folder}/ has no layer in LayeringTests (give it one, as docs/architecture.md describes)");
                continue;
            }
            foreach (Match m in ProjectUsing().Matches(File.ReadAllText(file)))
            {
                var target = m.Groups[1].Value;
                if (target == folder) continue;
                imports++;
                if (!Layer.TryGetValue(target, out int theirs)) problems.Add($"{relative} imports DeepSpeedSharp.{target}, which is not a layered folder");
                else if (theirs >= mine) problems.Add($"{folder}/ (layer {mine}) imports {target}/ (layer {theirs}) in {relative}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("; ", problems));
        Assert.True(imports > 50, $"only {imports} cross-folder imports found; the scan is not reading the sources");
    }

    [GeneratedRegex(@"^namespace ([\w.]+);", RegexOptions.Multiline)]
    private static partial Regex FileNamespace();

    /// <summary>A reader finds a type's namespace from its folder: every file of the library and the CLI declares the
    /// namespace of its folder (the root files, <c>DeepSpeed*.cs</c>, the project's root namespace).</summary>
    [Theory]
    [InlineData("DeepSpeedSharp", "DeepSpeedSharp")]
    [InlineData("DeepSpeedSharp.Cli", "DeepSpeedSharp.Cli")]
    [InlineData("DeepSpeedSharp.Launcher", "DeepSpeedSharp.Launcher")]
    public void EveryFilesNamespaceIsItsFolder(string project, string rootNamespace)
    {
        var root = ConfigTestHelpers.RepoRoot() ?? throw new InvalidOperationException($"no repository root above {AppContext.BaseDirectory}");
        var src = Path.Combine(root, "src", project);
        var problems = new List<string>();
        int files = 0;
        foreach (var file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(src, file);
            var folders = Path.GetDirectoryName(relative)!.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            if (folders.Length > 0 && folders[0] is "bin" or "obj") continue;
            files++;
            string expected = string.Join('.', new[] { rootNamespace }.Concat(folders));
            var declared = FileNamespace().Match(File.ReadAllText(file));
            if (!declared.Success) problems.Add($"{relative} declares no file-scoped namespace (expected {expected})");
            else if (declared.Groups[1].Value != expected) problems.Add($"{relative} declares namespace {declared.Groups[1].Value}; its folder says {expected}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(files > 10, $"only {files} files found under {src}");
    }

    /// <summary>The launcher is the dss tool's: the library a trainer references neither holds its types nor references its assembly.</summary>
    [Fact]
    public void TheLibraryDoesNotCarryTheLauncher()
    {
        var library = typeof(DeepSpeed).Assembly;
        Assert.DoesNotContain(library.GetTypes(), t => t.Namespace?.StartsWith("DeepSpeedSharp.Launcher", StringComparison.Ordinal) == true);
        Assert.DoesNotContain(library.GetReferencedAssemblies(), a => a.Name == "DeepSpeedSharp.Launcher");
        Assert.Equal("DeepSpeedSharp.Launcher", typeof(DeepSpeedSharp.Launcher.LaunchRunner).Assembly.GetName().Name);
    }
}
