using DeepSpeedSharp.Native;
using DeepSpeedSharp.Tests.Packaging;

namespace DeepSpeedSharp.Tests.Native;

/// <summary>When libLibTorchSharp.so does not load, the message names the real cause, the file and the fix.</summary>
public sealed class NativeLoadDiagnosisTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-native-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void The_unpatched_library_is_explained_by_its_missing_GLIBCXX_version()
    {
        Assert.True(TorchRuntime.IsLoaded, TorchRuntime.FailureReason);   // the test's own (patched) copy loads
        var copy = Path.Combine(_dir.FullName, "libLibTorchSharp.so");
        File.Copy(TorchSharpFiles.CachedLibTorchSharp, copy);
        var probe = NativeLoadDiagnosis.Load(copy);
        Assert.Contains("GLIBCXX_3.4.32", probe.LoaderError);   // this machine's libstdc++ is older than GCC 13
        var message = NativeLoadDiagnosis.Explain(probe);
        Assert.StartsWith($"TorchSharp's native library {copy} needs GLIBCXX_3.4.32 (GCC 13's libstdc++), which this system lacks", message);
        Assert.Contains("This copy was not patched", message);
        Assert.Contains("`dotnet build`", message);
        Assert.DoesNotContain("\n", message);
    }

    [Fact]
    public void Another_loader_failure_names_the_missing_file_and_the_libtorch_package()
    {
        var message = NativeLoadDiagnosis.Explain(new NativeLoadDiagnosis.Probe("/app/libLibTorchSharp.so", "libtorch.so: cannot open shared object file: No such file or directory"));
        Assert.Equal("TorchSharp's native library /app/libLibTorchSharp.so could not be loaded: libtorch.so: cannot open shared object file: " +
                     "No such file or directory. Make sure the program references the libtorch-cpu-linux-x64 2.10.0 package (or a libtorch-cuda-* package) next to TorchSharp 0.107.0.", message);
    }
}
