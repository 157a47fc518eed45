using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Cli.Commands;
using DeepSpeedSharp.IO;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// `dss checkpoint export` reads the checkpoint and writes safetensors as bytes, without libtorch: the file equals, byte
/// for byte, the one torch makes of the same weights (<c>Tensor.to(dtype)</c>, then <see cref="SafeTensors.Write"/>, as
/// the export did before); <c>--format hf</c> writes a Hugging Face directory (shards, index, config.json); bad input is
/// one line. In-process, on a checkpoint saved by a one-rank engine (<see cref="ExportedCheckpoint"/>).
/// </summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public sealed class CheckpointExportTests : IDisposable
{
    private readonly string dir;
    private readonly Dictionary<string, Tensor> state;
    private readonly string scratch = Directory.CreateTempSubdirectory("dss-export-out").FullName;

    public CheckpointExportTests() => (dir, state) = ExportedCheckpoint.Save();

    public void Dispose()
    {
        ExportedCheckpoint.Dispose(state.Values);
        Directory.Delete(dir, recursive: true);
        Directory.Delete(scratch, recursive: true);
    }

    private string Out(string name) => Path.Combine(scratch, name);

    private static (int Code, string Out, string Err) Dss(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = new CheckpointExportCommand().Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void TheExportIsByteForByteTheFileTorchWritesOfTheConvertedWeights(ScalarType dtype)
    {
        var expected = ExportedCheckpoint.Converted(state, dtype);
        var torchFile = Out("torch.safetensors");
        SafeTensors.Write(torchFile, expected, new Dictionary<string, string> { ["format"] = "pt", ["source"] = "deepspeedsharp checkpoint global_step2" });
        var exported = Out("model.safetensors");
        var summary = CheckpointExport.Export(dir, null, exported, dtype);
        Assert.Equal(File.ReadAllBytes(torchFile), File.ReadAllBytes(exported));
        Assert.Equal(state.Count, summary.Tensors);
        Assert.Equal(state.Values.Sum(t => t.numel()), summary.Elements);
        Assert.Equal(new FileInfo(exported).Length, summary.Bytes);
        Assert.Equal(new[] { "model.safetensors", "torch.safetensors" }, Directory.GetFiles(scratch).Select(Path.GetFileName).Order()); // no temporary left
        ExportedCheckpoint.Dispose(expected.Values);
    }

    [Fact]
    public void ASmallShardSizeGivesShardsWhoseIndexMapsEveryTensorOnceInTheCheckpointsOrder()
    {
        var single = Out("model.safetensors");
        CheckpointExport.Export(dir, null, single);
        var hf = Out("hf");
        // fc1.weight is 960 bytes: above the limit, a shard of its own; the rest fill shards of at most 500 bytes.
        var summary = HuggingFaceExport.Export(dir, null, hf, maxShardBytes: 500);
        Assert.True(summary.Files.Count >= 3, $"{summary.Files.Count} shards");
        Assert.Equal(Enumerable.Range(1, summary.Files.Count).Select(i => $"model-{i:D5}-of-{summary.Files.Count:D5}.safetensors"), summary.Files);
        Assert.Equal(summary.Files.Append("model.safetensors.index.json").Order(), Directory.GetFiles(hf).Select(Path.GetFileName).Order());
        Assert.Null(summary.ConfigSource);

        var (totalSize, weightMap) = ExportedCheckpoint.ReadIndex(hf);
        var expected = SafeTensors.Read(single);
        var got = ExportedCheckpoint.ReadDirectory(hf, summary.Files);
        ExportedCheckpoint.AssertSameTensors(expected, got, "the shards");
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), weightMap.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(expected.Values.Sum(t => t.numel() * t.element_size()), totalSize);
        Assert.Equal(totalSize, summary.TotalSize);
        foreach (var file in summary.Files)
        {
            using var shard = new RawSafeTensorsFile(Path.Combine(hf, file));
            var tensors = shard.Tensors.ToList();
            Assert.All(tensors, t => Assert.Equal(file, weightMap[t.Name]));
            Assert.True(tensors.Count == 1 || tensors.Sum(t => t.Bytes) <= 500, $"{file} holds {tensors.Sum(t => t.Bytes)} bytes");
        }
        // In the checkpoint's order (trainable parameters, then buffers and frozen parameters), shard numbers never go back.
        using (var model = ConsolidatedModel.Open(CheckpointExport.ResolveTag(dir, null), CheckpointManifest.Read(CheckpointExport.ResolveTag(dir, null))))
        {
            var shardOf = model.Tensors.Select(t => summary.Files.ToList().IndexOf(weightMap[t.Name])).ToList();
            Assert.Equal(shardOf.Order(), shardOf);
            Assert.Equal("fc1.weight", model.Tensors[0].Name);
            Assert.Equal([model.Tensors[0].Name], weightMap.Where(kv => kv.Value == summary.Files[0]).Select(kv => kv.Key));
        }
        ExportedCheckpoint.Dispose(expected.Values, got.Values);
    }

    [Fact]
    public void OneShardIsModelSafetensorsWithoutAnIndexOrAConfigWhenTheCheckpointHasNone()
    {
        var (code, stdout, err) = Dss(dir, "--format", "hf", "--out", Out("hf"), "--dtype", "fp16");
        Assert.True(code == 0, err);
        Assert.Equal(["model.safetensors"], Directory.GetFiles(Out("hf")).Select(Path.GetFileName));
        var lines = stdout.Trim().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Contains($"to {Out("hf")}: model.safetensors", lines[0]);
        Assert.StartsWith($"no config.json in {dir}: ", lines[1]);
        var expected = ExportedCheckpoint.Converted(state, ScalarType.Float16);
        var got = ExportedCheckpoint.ReadDirectory(Out("hf"), ["model.safetensors"]);
        ExportedCheckpoint.AssertSameTensors(expected, got, "model.safetensors");
        Assert.Empty(Directory.GetDirectories(scratch, ".*")); // the temporary directory was renamed into place
        ExportedCheckpoint.Dispose(expected.Values, got.Values);
    }

    [Fact]
    public void TheCheckpointsConfigJsonIsCopiedWithTorchDtypeSetToTheExportedDtype()
    {
        File.WriteAllText(Path.Combine(dir, "config.json"), """
            { "architectures": ["LlamaForCausalLM"], "hidden_size": 40, "torch_dtype": "float32", "model_type": "llama" }
            """);
        Directory.CreateDirectory(Out("hf")); // an empty directory may be the target
        var (code, stdout, err) = Dss(dir, "--format", "hf", "--out", Out("hf"), "--dtype", "bf16", "--max-shard-size", "1KB");
        Assert.True(code == 0, err);
        Assert.Contains($"config.json: copied from {Path.Combine(dir, "config.json")} with torch_dtype \"bfloat16\"", stdout);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Out("hf"), "config.json")))!.AsObject();
        Assert.Equal("bfloat16", config["torch_dtype"]!.GetValue<string>());
        Assert.Equal("LlamaForCausalLM", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(40, config["hidden_size"]!.GetValue<int>());
        Assert.True(File.Exists(Path.Combine(Out("hf"), "model.safetensors.index.json")));
    }

    [Fact]
    public void BadInputIsOneLineNamingTheValueOrFile()
    {
        var single = Out("m.safetensors");
        Assert.Equal(0, Dss(dir, "--out", single).Code);
        Directory.CreateDirectory(Out("full"));
        File.WriteAllText(Path.Combine(Out("full"), "keep.txt"), "x");
        var truncated = Path.Combine(Out("ckpt-copy"), "global_step2");
        Directory.CreateDirectory(truncated);
        foreach (var f in Directory.GetFiles(Path.Combine(dir, "global_step2"))) File.Copy(f, Path.Combine(truncated, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(Out("ckpt-copy"), "latest"), "global_step2");
        var data = Path.Combine(truncated, "zero_pp_rank_0_mp_rank_00_optim_states.safetensors");
        using (var s = new FileStream(data, FileMode.Open)) s.SetLength(s.Length / 2);
        var missing = Out("no-such-checkpoint");
        var cases = new (string[] Args, int Code, string Expected)[]
        {
            ([dir, "--out", Out("x"), "--format", "nope"], 2, "--format needs one of safetensors, hf, got 'nope'"),
            ([dir, "--out", Out("x"), "--format"], 2, "--format needs one of safetensors, hf"),
            ([dir, "--out", Out("x"), "--format", "hf", "--max-shard-size", "5XB"], 2, $"--max-shard-size needs {HuggingFaceShards.SizeRequirement}, got '5XB'"),
            ([dir, "--out", Out("x"), "--max-shard-size", "5GB"], 2, "--max-shard-size applies to --format hf only"),
            ([missing, "--out", Out("x")], 1, $"checkpoint directory '{missing}' does not exist"),
            ([missing, "--out", Out("x"), "--format", "hf"], 1, $"checkpoint directory '{missing}' does not exist"),
            ([Out("ckpt-copy"), "--out", Out("x")], 1, $"file '{data}' has "),
            ([Out("ckpt-copy"), "--out", Out("x"), "--format", "hf"], 1, "(truncated or replaced)"),
            ([dir, "--out", Out("full"), "--format", "hf"], 1, $"output directory '{Out("full")}' exists and is not empty"),
            ([dir, "--out", single, "--format", "hf"], 1, $"output '{single}' is a file"),
            ([dir, "--out", Out("full")], 1, $"output '{Out("full")}' is a directory"),
        };
        foreach (var (args, code, expected) in cases)
        {
            var (got, _, err) = Dss(args);
            var lines = err.Trim().Split('\n');
            Assert.True(got == code, $"{string.Join(' ', args)}: exit {got}, expected {code}: {err}");
            Assert.True(lines.Length == code, $"{string.Join(' ', args)}: {err}"); // an error line, and for a usage error the usage line
            Assert.StartsWith("dss checkpoint export: error: ", lines[0]);
            Assert.Contains(expected, lines[0]);
            Assert.DoesNotContain("   at ", err);
        }
        Assert.False(File.Exists(Out("x")) || Directory.Exists(Out("x")));
        Assert.Equal(["keep.txt"], Directory.GetFiles(Out("full")).Select(Path.GetFileName));
        Assert.Empty(Directory.GetFileSystemEntries(scratch, ".*")); // no temporary file or directory left behind
    }
}
