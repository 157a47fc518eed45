using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace DeepSpeedSharp.Native;

/// <summary>
/// Finds why TorchSharp's native library does not load, before TorchSharp tries (its own failure message blames a
/// missing libtorch package whatever the cause, after copying ~500 MB of native files into the program's folder):
/// loads <c>libLibTorchSharp.so</c> from the program's native search folders and reads the loader's own error.
/// </summary>
internal static class NativeLoadDiagnosis
{
    /// <summary>SHA-256 of TorchSharp 0.107.0's linux-x64 libLibTorchSharp.so as shipped (needs GLIBCXX_3.4.32).</summary>
    internal const string KnownUnpatchedSha256 = "cf33b1b0bb6bbb9754a768fb5c5d04d9f498603be50e73f55621a0b40ee608b8";

    /// <summary>What loading the library directly said.</summary>
    /// <param name="Path">The libLibTorchSharp.so tried.</param>
    /// <param name="LoaderError">The dynamic loader's message (null when it loaded).</param>
    internal sealed record Probe(string Path, string? LoaderError);

    /// <summary>Loads libLibTorchSharp.so from the first native search folder that has it; null when none has it.</summary>
    internal static Probe? ProbeLibTorchSharp()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var path = Candidates().FirstOrDefault(File.Exists);
        return path == null ? null : Load(path);
    }

    /// <summary>Loads the library at <paramref name="path"/> and reports what the dynamic loader said.</summary>
    internal static Probe Load(string path)
    {
        try
        {
            NativeLibrary.Load(path);   // stays loaded: TorchSharp's own load of the same file then reuses it
            return new Probe(path, null);
        }
        catch (DllNotFoundException e)
        {
            // .NET's message is "Unable to load shared library '...' ... LD_DEBUG environment variable: \n<dlerror>".
            var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return new Probe(path, lines.Length > 1 ? lines[^1] : e.Message);
        }
    }

    /// <summary>The one-paragraph explanation of a failed load, naming the cause, the file and the fix.</summary>
    internal static string Explain(Probe probe)
    {
        var error = probe.LoaderError ?? "";
        if (!error.Contains("GLIBCXX", StringComparison.Ordinal))
            return $"TorchSharp's native library {probe.Path} could not be loaded: {error}. Make sure the program references " +
                   "the libtorch-cpu-linux-x64 2.10.0 package (or a libtorch-cuda-* package) next to TorchSharp 0.107.0.";
        var version = System.Text.RegularExpressions.Regex.Match(error, @"GLIBCXX_[0-9.]+").Value;
        var sum = Sha256(probe.Path);
        var why = sum == KnownUnpatchedSha256
            ? "This copy was not patched: DeepSpeedSharp's build step marks that unused requirement weak in the build and " +
              "publish output, so rebuild or republish with `dotnet build` / `dotnet publish` (the DeepSpeedSharp package " +
              "brings the step; with a ProjectReference, import DeepSpeedSharp.targets as the README shows)"
            : $"This copy (sha256 {sum}) is not the TorchSharp 0.107.0 build that DeepSpeedSharp knows how to patch: use TorchSharp 0.107.0";
        return $"TorchSharp's native library {probe.Path} needs {version} (GCC 13's libstdc++), which this system lacks " +
               $"(loader: \"{error}\"). {why}, or install a libstdc++ from GCC 13 or newer.";
    }

    private static IEnumerable<string> Candidates()
    {
        var dirs = (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(AppContext.BaseDirectory)
            .Append(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"));
        return dirs.Select(d => Path.Combine(d, "libLibTorchSharp.so"));
    }

    private static string Sha256(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (IOException)
        {
            return "unreadable";
        }
    }
}
