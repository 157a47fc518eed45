using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// The torch-free export of a tensor 2 × pipeline 2 checkpoint (<c>WideToy</c> on 4 ranks: a vocabulary-parallel
/// embedding, column- and row-parallel blocks, replicated LayerNorms, a column-parallel head, in two stages) is the whole
/// model as the run trained it: byte for byte the file torch writes of the trained weights (saved whole by the run, then
/// converted with <c>Tensor.to</c>) in fp32, bf16 and fp16; and its Hugging Face shards hold the same tensors.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed class CheckpointExportMultiProcessTests(ITestOutputHelper output)
{
    [Fact]
    public void ATensorTwoByPipelineTwoCheckpointExportsTheWholeModelAsTorchConvertsIt()
    {
        var dir = Directory.CreateTempSubdirectory("dss-export-tp-pp").FullName;
        try
        {
            string ckpt = Path.Combine(dir, "ckpt"), weights = Path.Combine(dir, "trained.safetensors");
            ScenarioRuns.Run("wide-toy", 4, $"--pp 2 --tp 2 --stage 1 --steps 2 --clip 1.0 --lr 5e-4 --out {Path.Combine(dir, "steps.jsonl")} " +
                                            $"--save-dir {ckpt} --save-at 2 --save-weights {weights}");
            var manifest = CheckpointManifest.Read(Path.Combine(ckpt, "global_step2"));
            Assert.Equal(new[] { 2, 1, 2 }, manifest.Topology!.Dims);
            Assert.Contains(manifest.Shards.SelectMany(s => s.Parameters), p => p.PartitionDim == 1);
            // The run's whole-model file names layers "layers.N.*"; the pipeline checkpoint names them "N.*".
            var trained = SafeTensors.Read(weights).ToDictionary(kv => kv.Key["layers.".Length..], kv => kv.Value);
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16 })
            {
                var expected = ExportedCheckpoint.Converted(trained, dtype);
                string torchFile = Path.Combine(dir, $"torch-{dtype}.safetensors"), exported = Path.Combine(dir, $"export-{dtype}.safetensors");
                SafeTensors.Write(torchFile, expected, new Dictionary<string, string> { ["format"] = "pt", ["source"] = "deepspeedsharp checkpoint global_step2" });
                var summary = CheckpointExport.Export(ckpt, null, exported, dtype);
                Assert.True(File.ReadAllBytes(torchFile).AsSpan().SequenceEqual(File.ReadAllBytes(exported)), $"{dtype}: the export differs from torch's file of the trained weights");
                Assert.Equal(trained.Count, summary.Tensors);
                output.WriteLine($"{dtype}: {summary.Tensors} tensors, {summary.Elements:N0} elements, {summary.Bytes:N0} bytes: equal to torch's file");
                ExportedCheckpoint.Dispose(expected.Values);
            }

            var hf = Path.Combine(dir, "hf");
            var sharded = HuggingFaceExport.Export(ckpt, null, hf, ScalarType.BFloat16, maxShardBytes: 1_000_000);
            var (totalSize, weightMap) = ExportedCheckpoint.ReadIndex(hf);
            var single = SafeTensors.Read(Path.Combine(dir, $"export-{ScalarType.BFloat16}.safetensors"));
            var shards = ExportedCheckpoint.ReadDirectory(hf, sharded.Files);
            ExportedCheckpoint.AssertSameTensors(single, shards, "the bf16 shards");
            Assert.Equal(single.Keys.Order(StringComparer.Ordinal), weightMap.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(single.Values.Sum(t => t.numel() * 2), totalSize);
            output.WriteLine($"hf: {sharded.Files.Count} shards of at most 1 MB, total_size {totalSize:N0}");
            Assert.True(sharded.Files.Count >= 4, $"{sharded.Files.Count} shards");
            ExportedCheckpoint.Dispose(trained.Values, single.Values, shards.Values);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
