using TorchSharp;

namespace DeepSpeedSharp.Native;

/// <summary>
/// Loads TorchSharp's native libraries once and turns the usual load failures into one clear message: the real cause
/// (e.g. the missing GLIBCXX version), the file, and the fix. <see cref="DeepSpeed.InitDistributed"/> and
/// <see cref="DeepSpeed.Initialize"/> call <see cref="EnsureLoaded"/> before anything touches torch.
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
        // Ask the loader first: a failure (a missing GLIBCXX version, a missing libtorch.so) is then explained with the
        // loader's own reason instead of TorchSharp's message, which blames a missing package whatever the cause, and
        // without TorchSharp's fallback, which copies ~500 MB of native files into the program's folder first.
        var probe = NativeLoadDiagnosis.ProbeLibTorchSharp();
        if (probe?.LoaderError != null) return NativeLoadDiagnosis.Explain(probe);
        try
        {
            using var t = torch.zeros(1);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or BadImageFormatException)
        {
            var inner = e;
            while (inner.InnerException != null) inner = inner.InnerException;
            var why = inner.Message.Split('\n')[0].Trim();
            return $"TorchSharp's native library could not be loaded ({why}). Make sure the program references the " +
                   "libtorch-cpu-linux-x64 2.10.0 package (or a libtorch-cuda-* package) next to TorchSharp 0.107.0 and was built for linux-x64; " +
                   "the dss tool itself does not carry libtorch, so commands that compute with torch run from a program or the repository's build.";
        }
    }
}
