using System.Diagnostics;

using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Packaging;

/// <summary>
/// buildTransitive/patch-libtorchsharp.sh, the step the package runs on its users' build output: it patches the known
/// file once, writes through no link into the NuGet cache, and leaves other builds alone.
/// </summary>
[Trait("Tier", "Full")]
public sealed class PatchScriptTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-patch-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static string Script => Path.Combine(TorchSharpFiles.RepositoryRoot(), "src", "DeepSpeedSharp", "buildTransitive", "patch-libtorchsharp.sh");

    private (int Code, string Output) Patch()
    {
        var run = ChildProcess.Run("bash", [Script, _dir.FullName]);
        return (run.ExitCode, run.Output);
    }

    private string Native(string name = "libLibTorchSharp.so")
    {
        var native = Path.Combine(_dir.FullName, "runtimes", "linux-x64", "native");
        Directory.CreateDirectory(native);
        return Path.Combine(native, name);
    }

    [Fact]
    public void The_known_file_is_patched_once_and_the_cache_is_untouched()
    {
        Assert.Equal(TorchSharpFiles.KnownUnpatchedSha256, TorchSharpFiles.Sha256(TorchSharpFiles.CachedLibTorchSharp));
        var lib = Native();
        File.Copy(TorchSharpFiles.CachedLibTorchSharp, lib);
        var (code, output) = Patch();
        Assert.Equal(0, code);
        Assert.Contains("marked GLIBCXX_3.4.32 weak", output);
        var patched = TorchSharpFiles.Sha256(lib);
        Assert.NotEqual(TorchSharpFiles.KnownUnpatchedSha256, patched);
        var original = File.ReadAllBytes(TorchSharpFiles.CachedLibTorchSharp);
        var now = File.ReadAllBytes(lib);
        Assert.Equal([260660], Enumerable.Range(0, now.Length).Where(i => now[i] != original[i]));   // one byte: vna_flags
        Assert.Equal(2, now[260660]);                                                                // VER_FLG_WEAK
        (code, output) = Patch();
        Assert.Equal((0, ""), (code, output));   // already patched: silent, unchanged
        Assert.Equal(patched, TorchSharpFiles.Sha256(lib));
        Assert.Equal(TorchSharpFiles.KnownUnpatchedSha256, TorchSharpFiles.Sha256(TorchSharpFiles.CachedLibTorchSharp));
    }

    [Fact]
    public void A_symbolic_link_into_the_cache_is_replaced_by_a_patched_copy()
    {
        var lib = Native();
        File.CreateSymbolicLink(lib, TorchSharpFiles.CachedLibTorchSharp);
        Assert.Equal(0, Patch().Code);
        Assert.Null(new FileInfo(lib).LinkTarget);
        Assert.NotEqual(TorchSharpFiles.KnownUnpatchedSha256, TorchSharpFiles.Sha256(lib));
        Assert.Equal(TorchSharpFiles.KnownUnpatchedSha256, TorchSharpFiles.Sha256(TorchSharpFiles.CachedLibTorchSharp));
    }

    [Fact]
    public void Another_build_is_left_alone_with_a_warning_only_when_it_needs_the_missing_version()
    {
        var lib = Native();
        File.WriteAllText(lib, "not the known build, needs nothing");
        Assert.Equal((0, ""), Patch());
        File.WriteAllText(lib, "another build that asks for GLIBCXX_3.4.32");
        var (code, output) = Patch();
        Assert.Equal(0, code);
        Assert.Contains("is not the known TorchSharp 0.107.0 build", output);
        Assert.Equal("another build that asks for GLIBCXX_3.4.32", File.ReadAllText(lib));
    }
}
