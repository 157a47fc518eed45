using System.Security.Cryptography;

namespace DeepSpeedSharp.Tests.Packaging;

/// <summary>Where this machine keeps its restored packages, and TorchSharp 0.107.0's libLibTorchSharp.so as shipped.</summary>
internal static class TorchSharpFiles
{
    /// <summary>SHA-256 of the shipped (unpatched) linux-x64 libLibTorchSharp.so of TorchSharp 0.107.0.</summary>
    public const string KnownUnpatchedSha256 = "cf33b1b0bb6bbb9754a768fb5c5d04d9f498603be50e73f55621a0b40ee608b8";

    /// <summary>The NuGet global packages folder the repository restored into (NUGET_PACKAGES or ~/.nuget/packages).</summary>
    public static string MachinePackagesFolder =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>The NuGet cache's copy of libLibTorchSharp.so (never to be modified).</summary>
    public static string CachedLibTorchSharp =>
        Path.Combine(MachinePackagesFolder, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    /// <summary>The repository's root (the folder holding DeepSpeedSharp.slnx).</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepSpeedSharp.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no DeepSpeedSharp.slnx above {AppContext.BaseDirectory}");
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
