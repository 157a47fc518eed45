using TorchSharp;

namespace DeepSpeedSharp.Native;

/// <summary>
/// Loads TorchSharp's native libraries once and turns the usual load failures into one clear message.
/// </summary>
public static class TorchRuntime
{
    private static readonly Lazy<string?> LoadError = new(TryLoad);

    /// <summary>True when libtorch and libLibTorchSharp loaded.</summary>
    public static bool IsLoaded => LoadError.Value == null;

    /// <summary>Why loading failed (null when it did not).</summary>
    public static string? FailureReason => LoadError.Value;

    /// <summary>Throws <see cref="InvalidOperationException"/> with an explanation when the native libraries cannot load.</summary>
    public static void EnsureLoaded()
    {
        if (LoadError.Value is { } error) throw new InvalidOperationException(error);
    }

    private static string? TryLoad()
    {
        try
        {
            using var t = torch.zeros(1);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or BadImageFormatException)
        {
            var inner = e;
            while (inner.InnerException != null) inner = inner.InnerException;
            var why = inner.Message;
            var hint = why.Contains("GLIBCXX", StringComparison.Ordinal)
                ? "libLibTorchSharp.so needs GLIBCXX_3.4.32 (GCC 13's libstdc++), which this system lacks. The build " +
                  "normally weakens that requirement in the build output (build/patch-libtorchsharp.sh, run by " +
                  "Directory.Build.targets after every build); rebuild with `dotnet build`, or run that script on the " +
                  "folder holding the program, or install a libstdc++ from GCC 13 or newer."
                : "Make sure the program references the `libtorch-cpu-linux-x64` 2.10.0 package (or a CUDA libtorch package) " +
                  "next to TorchSharp 0.107.0, and that it was built for linux-x64.";
            return $"TorchSharp's native library could not be loaded: {why}. {hint}";
        }
    }
}
