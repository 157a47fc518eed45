using System.Diagnostics;
using System.Reflection;
using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Packaging;

/// <summary>
/// The library and the dss tool used as a user outside the repository uses them: both are packed into a temporary
/// local feed, a consumer project in a temporary folder references the package (PackageReference only) with an empty
/// NuGet packages folder, the tool is installed from the feed (tool-path install), and `dss launch` trains the consumer
/// on 2 ranks and saves a checkpoint, which the installed tool — without libtorch — inspects and exports. On Debian 12
/// this only runs because the package's buildTransitive targets patch the consumer's output.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed class PackageConsumerTests : IDisposable
{
    private readonly ITestOutputHelper _output;
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("dss-package-");

    public PackageConsumerTests(ITestOutputHelper output) => _output = output;

    public void Dispose()
    {
        try { _root.Delete(recursive: true); }
        catch (IOException) { }
    }

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    [Fact]
    public void Packed_library_and_tool_train_a_consumer_project_on_two_ranks()
    {
        var total = Stopwatch.StartNew();
        string repo = TorchSharpFiles.RepositoryRoot();
        string machinePackages = TorchSharpFiles.MachinePackagesFolder;
        Assert.True(Directory.Exists(Path.Combine(machinePackages, "torchsharp")),
            $"the packages this repo restored (TorchSharp, libtorch) are not in {machinePackages}; set NUGET_PACKAGES to the folder holding them");
        // A version no cache has seen, so nothing stale can be picked up; the build the tests ran is packed as it is.
        string version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        string feed = Path.Combine(_root.FullName, "feed"), packages = Path.Combine(_root.FullName, "packages");
        string consumer = Path.Combine(_root.FullName, "consumer"), tools = Path.Combine(_root.FullName, "tools");
        File.WriteAllText(Path.Combine(_root.FullName, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="feed" value="{feed}" />
              </packageSources>
              <fallbackPackageFolders>
                <add key="machine" value="{machinePackages}" />
              </fallbackPackageFolders>
            </configuration>
            """);
        // The empty packages folder receives DeepSpeedSharp and dss; TorchSharp, libtorch and the rest come read-only
        // from the machine's folder (a fallback folder: used in place, never written, so nothing is re-extracted).
        var run = new CommandRunner(new Dictionary<string, string?> { ["NUGET_PACKAGES"] = packages, ["OMP_NUM_THREADS"] = "1" }, _output.WriteLine);

        foreach (var project in new[] { "src/DeepSpeedSharp", "src/DeepSpeedSharp.Cli" })
            run.Run(repo, "dotnet", "pack", project, "-c", Configuration, "--no-build", "-o", feed, $"-p:PackageVersion={version}");
        Assert.True(File.Exists(Path.Combine(feed, $"DeepSpeedSharp.{version}.nupkg")));
        Assert.True(File.Exists(Path.Combine(feed, $"DeepSpeedSharp.{version}.snupkg")));
        string toolPackage = Path.Combine(feed, $"dss.{version}.nupkg");
        Assert.True(new FileInfo(toolPackage).Length < 8 << 20, $"the dss tool package is {new FileInfo(toolPackage).Length:N0} bytes: does it carry libtorch?");
        using (var zip = System.IO.Compression.ZipFile.OpenRead(toolPackage))
        {
            // Lean: only linux-x64 natives (TorchSharp's, not libtorch), no SkiaSharp, no XML docs.
            var extra = zip.Entries.Select(e => e.FullName).Where(n => n.Contains("/runtimes/", StringComparison.Ordinal) && !n.Contains("/runtimes/linux-x64/", StringComparison.Ordinal)
                || n.Contains("Skia", StringComparison.OrdinalIgnoreCase) || n.Contains("libtorch", StringComparison.Ordinal) || n.StartsWith("tools/", StringComparison.Ordinal) && n.EndsWith(".xml", StringComparison.Ordinal) && !n.EndsWith("/DotnetToolSettings.xml", StringComparison.Ordinal)).ToList();
            Assert.True(extra.Count == 0, $"the dss tool package carries files it does not need: {string.Join(", ", extra)}");
        }

        string config = ConsumerProject.Write(consumer, version, "2.10.0");
        string build = run.Run(consumer, "dotnet", "build", "-c", "Release", "-nodeReuse:false", "-p:UseSharedCompilation=false");
        Assert.DoesNotContain("warning DSS001", build);
        string output = Path.Combine(consumer, "bin", "Release", "net10.0");
        string lib = Path.Combine(output, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.NotEqual(TorchSharpFiles.KnownUnpatchedSha256, TorchSharpFiles.Sha256(lib));   // the package's build step patched the consumer's output...
        Assert.Equal(TorchSharpFiles.KnownUnpatchedSha256, TorchSharpFiles.Sha256(TorchSharpFiles.CachedLibTorchSharp));   // ...not the cache
        Assert.True(Directory.Exists(Path.Combine(packages, "deepspeedsharp", version)), "DeepSpeedSharp was not restored from the feed into the empty packages folder");

        run.Run(_root.FullName, "dotnet", "tool", "install", "dss", "--tool-path", tools, "--version", version, "--configfile", Path.Combine(_root.FullName, "NuGet.config"));
        string dss = Path.Combine(tools, "dss");
        Assert.Equal(ExpectedToolVersion(), run.Run(_root.FullName, dss, "--version").Trim());
        Assert.Contains("--num_gpus <N>", run.Run(_root.FullName, dss, "launch", "--help"));
        Assert.Contains($"{config}: ok:", run.Run(_root.FullName, dss, "validate-config", config, "--world-size", "2"));
        // The tool leaves libtorch out: a command that computes with torch either finds a libtorch of the machine's and
        // runs, or fails in one line without a stack trace. What the dynamic loader says is the machine's business (a
        // libtorch installed system-wide changes it), so only the behaviour is checked, not its wording.
        var (benchCode, bench) = run.RunAllowingFailure(_root.FullName, dss, "bench", "adam", "--params", "1M", "--steps", "1");
        if (benchCode != 0)
        {
            Assert.True(benchCode == 1, $"dss bench adam without libtorch exited with {benchCode}:\n{bench}");
            Assert.True(bench.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == 1 && !bench.Contains("   at ", StringComparison.Ordinal),
                $"dss bench adam without libtorch should fail in one line:\n{bench}");
        }

        string ckpt = Path.Combine(_root.FullName, "ckpt");
        string trained = run.Run(consumer, dss, "launch", "--num_gpus", "2", "--master_port", RankProcesses.FreePort().ToString(),
            Path.Combine(output, "Consumer.dll"), "--deepspeed_config", config, "--save-dir", ckpt);
        long idSum = 0;
        for (int rank = 0; rank < 2; rank++)
        {
            var line = trained.Split('\n').SingleOrDefault(l => l.Contains($"consumer rank {rank}/2:"));
            Assert.True(line != null, $"rank {rank} printed no result:\n{trained}");
            Assert.Contains("384 samples", line);   // 3 epochs of its 128-sample shard
            idSum += long.Parse(line.Split("id sum ")[1].Split(',')[0]);
            var losses = line.Split("loss ")[1..].Select(s => float.Parse(s.Split(',')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.True(losses[1] < losses[0], $"rank {rank} did not learn: {line}");
        }
        Assert.Equal(255 * 256 / 2, idSum);   // the two shards of epoch 0 are disjoint and cover the 256 samples
        InstalledToolInspectsAndExportsWithoutLibTorch(run, dss, ckpt);
        _output.WriteLine($"{total.Elapsed.TotalSeconds,6:F1} s  in all");
    }

    /// <summary>
    /// The installed tool, which carries no libtorch, inspects the checkpoint the consumer saved on 2 ranks and exports it
    /// as one file and as a sharded Hugging Face directory (with the checkpoint directory's config.json): every file it
    /// writes equals, byte for byte, what the library writes in this process.
    /// </summary>
    private void InstalledToolInspectsAndExportsWithoutLibTorch(CommandRunner run, string dss, string ckpt)
    {
        File.WriteAllText(Path.Combine(ckpt, HuggingFaceExport.ConfigFile), """{ "model_type": "consumer", "torch_dtype": "float32" }""");
        // dss report runs too, and says the native libraries are the program's to bring.
        string report = run.Run(_root.FullName, dss, "report");
        Assert.Contains("TorchSharp native libraries", report);
        _output.WriteLine(report.Split('\n').FirstOrDefault(l => l.Contains("TorchSharp native libraries")));
        string inspect = run.Run(_root.FullName, dss, "checkpoint", "inspect", ckpt);
        Assert.Contains("data-parallel size 2, model-parallel size 1; ZeRO stage 1", inspect);
        Assert.Contains("all checksums verified", inspect);

        string exports = Path.Combine(_root.FullName, "exports");
        string toolFile = Path.Combine(exports, "tool.safetensors"), libraryFile = Path.Combine(exports, "library.safetensors");
        Assert.Contains("exported 4 tensors", run.Run(_root.FullName, dss, "checkpoint", "export", ckpt, "--out", toolFile, "--dtype", "bf16"));
        CheckpointExport.Export(ckpt, null, libraryFile, ScalarType.BFloat16);
        Assert.True(File.ReadAllBytes(libraryFile).AsSpan().SequenceEqual(File.ReadAllBytes(toolFile)), "the tool's export differs from the library's");

        string toolDir = Path.Combine(exports, "tool-hf"), libraryDir = Path.Combine(exports, "library-hf");
        string printed = run.Run(_root.FullName, dss, "checkpoint", "export", ckpt, "--format", "hf", "--out", toolDir, "--max-shard-size", "1KB");
        Assert.Contains("config.json: copied from", printed);
        var library = HuggingFaceExport.Export(ckpt, null, libraryDir, ScalarType.Float32, maxShardBytes: 1000);
        Assert.True(library.Files.Count == 2, $"{library.Files.Count} shards"); // fc1.weight (1,024 bytes) alone, the rest together
        var files = Directory.GetFiles(libraryDir).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(files, Directory.GetFiles(toolDir).Select(Path.GetFileName).Order());
        Assert.Contains(HuggingFaceExport.ConfigFile, files);
        foreach (var file in files)
            Assert.True(File.ReadAllBytes(Path.Combine(libraryDir, file!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(toolDir, file!))),
                $"the tool's {file} differs from the library's");
    }

    /// <summary>The version `dss --version` prints: the informational version the tool was built with.</summary>
    private static string ExpectedToolVersion() =>
        typeof(DeepSpeedSharp.Cli.Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
}
