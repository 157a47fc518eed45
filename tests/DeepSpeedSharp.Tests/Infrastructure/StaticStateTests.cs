using System.Reflection;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// Process-wide mutable state in the library is the exception, named here with the reason it is process-wide. A static
/// field that is not readonly (an auto-property's included), or a static readonly growable collection (a registry), fails
/// this test unless listed: state belongs to an owner (the engine, a strategy, a process group) and reaches its users
/// through constructors. Fixed lookup tables (readonly arrays) are not state.
/// </summary>
public class StaticStateTests
{
    private static readonly Dictionary<string, string> Allowed = new(StringComparer.Ordinal)
    {
        ["DeepSpeedSharp.ActivationCheckpointing.ActivationCheckpointer.current"] =
            "DeepSpeed's module-level API (deepspeed.checkpointing.*) is called by model code without an engine in hand: it reaches the current engine's state",
        ["DeepSpeedSharp.Comm.Dist._runtime"] = "the process's distributed runtime, as torch.distributed's default group",
        ["DeepSpeedSharp.Comm.LauncherWatch._armed"] = "the watch on the launcher is installed once per process",
        ["DeepSpeedSharp.Comm.UnhandledErrors._armed"] = "the unhandled-exception handler is installed once per process",
        ["DeepSpeedSharp.Comm.Mpi.MpiLibrary._loaded"] = "a native library is loaded once per process",
        ["DeepSpeedSharp.Comm.Mpi.MpiLibrary._loadError"] = "a native library is loaded once per process",
        ["DeepSpeedSharp.Native.AllocatorTuning._unavailable"] = "the process's native allocator",
        ["DeepSpeedSharp.Native.AllocatorTuning._trims"] = "the process's native allocator",
        ["DeepSpeedSharp.Utils.Log.<Rank>k__BackingField"] = "the rank every log line of the process is prefixed with",
        ["DeepSpeedSharp.Topology.ParallelParameterExtensions.Table"] =
            "attributes attached to parameters (Megatron's tensor_model_parallel, sequence_parallel), weakly keyed by the parameter",
        ["DeepSpeedSharp.Zero.Zero3Strategy.Owners"] =
            "which strategy partitions a parameter (DeepSpeed's ds_* attributes), so GatheredParameters(params) finds it from the parameter",
        ["DeepSpeedSharp.Zero.ZeroInit.Registry"] =
            "parameters partitioned at construction by ZeroInit (DeepSpeed's ds_* attributes), taken by the engine that trains them",
    };

    private static readonly string[] GrowableCollections =
        ["List`", "Dictionary`", "HashSet`", "SortedSet`", "SortedDictionary`", "Queue`", "Stack`", "Concurrent", "ConditionalWeakTable`"];

    [Fact]
    public void LibraryTypesKeepNoStaticMutableStateOutsideTheAllowList()
    {
        var found = new List<string>();
        foreach (var type in typeof(DeepSpeed).Assembly.GetTypes())
        {
            if (type.Name.Contains('<')) continue; // compiler-generated closures and caches
            foreach (var f in type.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (f.IsLiteral || (f.Name.Contains('<') && !f.Name.EndsWith(">k__BackingField", StringComparison.Ordinal))) continue;
                bool registry = f.IsInitOnly && GrowableCollections.Any(c => f.FieldType.Name.StartsWith(c, StringComparison.Ordinal));
                if (!f.IsInitOnly || registry) found.Add($"{type.FullName}.{f.Name}");
            }
        }
        var unexpected = found.Where(n => !Allowed.ContainsKey(n)).Order().ToList();
        Assert.True(unexpected.Count == 0, "static mutable state outside the allow-list (give it an owner, or list it with the reason it is process-wide):\n" +
                                           string.Join("\n", unexpected));
        var stale = Allowed.Keys.Where(n => !found.Contains(n)).Order().ToList();
        Assert.True(stale.Count == 0, "allow-list entries that no longer exist (remove them):\n" + string.Join("\n", stale));
    }

    /// <summary>No switch hides in the library: the process environment is read in one place, the launch boundary
    /// (<c>Comm/LaunchEnvironment</c>: the launcher's variables, timeouts, backend tuning), and handed down as options.
    /// (The launcher, an assembly of its own that the CLI runs, reads PATH and MPI's variables.)</summary>
    [Fact]
    public void TheLibraryReadsTheEnvironmentOnlyAtTheLaunchBoundary()
    {
        var root = DeepSpeedSharp.Tests.Config.ConfigTestHelpers.RepoRoot() ?? throw new InvalidOperationException("no repository root");
        var src = Path.Combine(root, "src", "DeepSpeedSharp");
        var readers = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(src, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(f => !f.StartsWith("obj/", StringComparison.Ordinal) && !f.StartsWith("bin/", StringComparison.Ordinal))
            .Where(f => File.ReadAllText(Path.Combine(src, f)).Contains("GetEnvironmentVariable", StringComparison.Ordinal))
            .Order().ToList();
        Assert.Equal(["Comm/LaunchEnvironment.cs"], readers);
    }
}
