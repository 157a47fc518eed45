using DeepSpeedSharp.Launcher;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Cluster;

/// <summary>
/// A fact that needs benchmarks/cluster's emulated hosts: root, iproute2 (ip, tc), util-linux (unshare, nsenter), pdsh and
/// a kernel that lets this process create a network namespace. Skipped, with the reason in the report, otherwise.
/// </summary>
public sealed class ClusterFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Missing = new(FindMissing);

    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the emulated cluster cannot be brought up here.</summary>
    public ClusterFactAttribute()
    {
        if (Missing.Value is { } reason) Skip = reason;
    }

    private static string? FindMissing()
    {
        if (!OperatingSystem.IsLinux()) return "the emulated cluster needs Linux network namespaces";
        var uid = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries);
        if (uid is not { Length: > 2 } || uid[2] != "0") return "the emulated cluster needs root (network and mount namespaces)";
        foreach (var tool in new[] { "ip", "tc", "unshare", "nsenter", "pdsh" })
            if (ProgramResolver.FindOnPath(tool) == null) return $"the emulated cluster needs {tool} (apt-get install iproute2 util-linux pdsh)";
        string probe = $"dssc-probe-{Environment.ProcessId}";
        var add = ChildProcess.Run("ip", ["netns", "add", probe], timeout: TimeSpan.FromSeconds(20));
        ChildProcess.Run("ip", ["netns", "del", probe], timeout: TimeSpan.FromSeconds(20));
        return add.ExitCode == 0 ? null : $"this kernel or container does not let root create a network namespace: {add.Stderr.Trim()}";
    }
}
