using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Native;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// What <c>dss report</c> prints (the counterpart of DeepSpeed's <c>ds_report</c>): versions, whether the native
/// libraries load, which communication backends and launchers this machine offers, cores and memory.
/// </summary>
public static partial class EnvironmentReport
{
    /// <summary>One line of the report.</summary>
    /// <param name="Section">Heading the line belongs to.</param>
    /// <param name="Name">What is reported.</param>
    /// <param name="Value">Its value or status.</param>
    public sealed record Item(string Section, string Name, string Value);

    [GeneratedRegex(@"""libtorch-[a-z0-9-]+/([0-9][^""]*)""")]
    private static partial Regex LibTorchInDeps();

    /// <summary>Collects the report. Loading TorchSharp is attempted (and its failure reported, not thrown).</summary>
    public static IReadOnlyList<Item> Collect()
    {
        var items = new List<Item>();
        void Add(string section, string name, string value) => items.Add(new(section, name, value));

        Add("versions", "DeepSpeedSharp", Version(typeof(EnvironmentReport).Assembly));
        Add("versions", ".NET runtime", RuntimeInformation.FrameworkDescription);
        Add("versions", "OS", $"{RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})");
        Add("versions", "TorchSharp", Version(typeof(TorchSharp.torch).Assembly));
        Add("versions", "libtorch package", LibTorchPackage() ?? "not found in the program's .deps.json");

        Add("native", "TorchSharp native libraries", TorchRuntime.IsLoaded ? "loaded"
            : CarriesLibTorch() ? $"NOT loaded: {TorchRuntime.FailureReason}"
            : "not in this program (the installed dss tool carries no libtorch: a training program brings its own, e.g. the " +
              "libtorch-cpu-linux-x64 package; dss launch, report and checkpoint export/inspect need none)");
        if (TorchRuntime.IsLoaded)
        {
            Add("native", "torch threads", TorchSharp.torch.get_num_threads().ToString());
            Add("native", "CUDA available", TorchSharp.torch.cuda.is_available() ? $"yes ({TorchSharp.torch.cuda.device_count()} device(s))" : "no");
        }

        Add("communication", "tcp", "available (managed sockets)");
        Add("communication", "shm", SharedMemory());
        Add("communication", "OpenMPI", Library("libmpi.so.40", "libmpi.so") + Tool("; ompi_info", "ompi_info"));
        Add("communication", "MPICH", Library("libmpich.so.12", "libmpich.so") + Tool("; mpiexec.hydra", "mpiexec.hydra"));

        Add("launchers", "pdsh", Tool("", "pdsh").TrimStart(' ', ';'));
        Add("launchers", "mpirun", Tool("", "mpirun").TrimStart(' ', ';'));
        Add("launchers", "taskset (--bind_cores_to_rank)", Tool("", "taskset").TrimStart(' ', ';'));

        Add("machine", "logical cores", Environment.ProcessorCount.ToString());
        var cpu = DeepSpeedSharp.Native.CpuFeatures.OfThisMachine();
        Add("machine", "CPU", cpu.Model ?? "unknown");
        Add("machine", "vector / bf16", cpu.Describe());
        var mem = MemInfo();
        Add("machine", "memory", mem.Total > 0 ? $"{mem.Total / 1048576.0:F1} GiB total, {mem.Available / 1048576.0:F1} GiB available" : "unknown");
        return items;
    }

    /// <summary>Formats the report as aligned text, one section after another.</summary>
    public static string Format(IReadOnlyList<Item> items)
    {
        int width = items.Max(i => i.Name.Length) + 2;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("DeepSpeedSharp environment report");
        foreach (var section in items.GroupBy(i => i.Section))
        {
            sb.AppendLine($"--- {section.Key} ---");
            foreach (var i in section) sb.AppendLine($"{(i.Name + " ").PadRight(width, '.')} {i.Value}");
        }
        return sb.ToString();
    }

    private static string Version(Assembly a) =>
        a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? a.GetName().Version?.ToString() ?? "unknown";

    /// <summary>Whether libtorch itself sits beside this program (a training program's output, or a clone's build); the installed tool has none.</summary>
    public static bool CarriesLibTorch() =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libtorch.so"))
        || File.Exists(Path.Combine(AppContext.BaseDirectory, "libtorch.so"));

    private static string? LibTorchPackage()
    {
        var entry = Assembly.GetEntryAssembly()?.Location;
        if (string.IsNullOrEmpty(entry)) return null;
        var deps = Path.ChangeExtension(entry, ".deps.json");
        if (!File.Exists(deps)) return null;
        var m = LibTorchInDeps().Match(File.ReadAllText(deps));
        return m.Success ? m.Value.Trim('"') : null;
    }

    private static string SharedMemory()
    {
        if (!Directory.Exists("/dev/shm")) return "not available (no /dev/shm)";
        try
        {
            var d = new DriveInfo("/dev/shm");
            return $"available (/dev/shm, {d.AvailableFreeSpace / 1073741824.0:F1} GiB free)";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return "available (/dev/shm; free space unknown)";
        }
    }

    private static string Library(params string[] names)
    {
        foreach (var n in names)
        {
            if (NativeLibrary.TryLoad(n, out var handle))
            {
                NativeLibrary.Free(handle);
                return $"found ({n})";
            }
        }
        return $"not found ({string.Join(", ", names)})";
    }

    private static string Tool(string label, string name)
    {
        var path = ProgramResolver.FindOnPath(name);
        return $"{label} {(path != null ? path : "not on PATH")}";
    }

    private static (long Total, long Available) MemInfo()
    {
        if (!File.Exists("/proc/meminfo")) return (0, 0);
        long Get(string key)
        {
            var l = File.ReadLines("/proc/meminfo").FirstOrDefault(x => x.StartsWith(key + ":", StringComparison.Ordinal));
            return l != null && long.TryParse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out var kb) ? kb : 0;
        }
        return (Get("MemTotal"), Get("MemAvailable"));
    }
}
