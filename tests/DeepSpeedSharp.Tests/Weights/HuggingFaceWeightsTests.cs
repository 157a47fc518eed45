using System.Text.Json.Nodes;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Weights;
using DeepSpeedSharp.Zero;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Weights;

/// <summary>
/// Whole-model weights from a Hugging Face model directory (one file or shards with an index) and into
/// <see cref="ZeroInit"/> partitions, on one process that plays one tensor rank and one data-parallel rank of several:
/// every partition equals the matching elements of the whole tensor, only its bytes are read, and bad directories
/// fail in one line naming the file and tensor without changing the model.
/// </summary>
public sealed class HuggingFaceWeightsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("dss-hfw").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>emb [V, 6] split by rows, up [10, 6] by rows, down [6, 10] by columns, norm [6] replicated.</summary>
    private sealed class Model : nn.Module
    {
        public readonly Parameter emb, up, down, norm;

        public Model(long vocabRows, int tp) : base("model")
        {
            emb = new Parameter(zeros(vocabRows / tp, 6)).MarkTensorModelParallel(partitionDim: 0);
            up = new Parameter(zeros(10 / tp, 6)).MarkTensorModelParallel(partitionDim: 0);
            down = new Parameter(zeros(6, 10 / tp)).MarkTensorModelParallel(partitionDim: 1);
            norm = new Parameter(zeros(6));
            RegisterComponents();
        }
    }

    private static Dictionary<string, Tensor> Whole(long vocabRows, ScalarType dtype) => new()
    {
        ["emb"] = (arange(vocabRows * 6, ScalarType.Float32).view(vocabRows, 6) / 7).to(dtype),
        ["up"] = (arange(60, ScalarType.Float32).view(10, 6) + 1000).to(dtype),
        ["down"] = (arange(60, ScalarType.Float32).view(6, 10) + 2000).to(dtype),
        ["norm"] = (arange(6, ScalarType.Float32) + 3000).to(dtype),
    };

    /// <summary>A Hugging Face directory: the tensors in <paramref name="shards"/> files with an index (one file without).</summary>
    private string HfDirectory(string name, Dictionary<string, Tensor> tensors, int shards) =>
        HfTestDirectory.Write(Path.Combine(dir, name), tensors.ToList(), shards);

    [Fact]
    public void ReaderReadsAFlatRangeOfASliceAndOnlyItsBytes()
    {
        var path = Path.Combine(dir, "t.safetensors");
        using var t = arange(3 * 8 * 5, ScalarType.Float32).view(3, 8, 5);
        SafeTensors.Write(path, [new("t", t)]);
        using var reader = new SafeTensorsReader(path);
        foreach (var (dim, start, count) in new[] { (0, 1, 2), (1, 2, 4), (2, 1, 3), (1, 0, 8) })
        {
            using var slice = t.narrow(dim, start, count).contiguous().view(-1);
            for (long a = 0; a < slice.numel(); a += 7)
            {
                long n = Math.Min(11, slice.numel() - a), before = reader.BytesRead;
                using var got = reader.ReadSliceRange("t", dim, start, count, a, n);
                Assert.True(PlacedRank.Same(got, slice.narrow(0, a, n)), $"dim {dim} [{start}, +{count}) flat [{a}, +{n})");
                Assert.Equal(n * 4, reader.BytesRead - before);
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => reader.ReadSliceRange("t", 1, 2, 4, 50, 11));
    }

    [Theory]
    [InlineData(1, 0, 1, 0, 1, ScalarType.BFloat16)]
    [InlineData(3, 1, 2, 0, 1, ScalarType.BFloat16)]
    [InlineData(2, 0, 1, 2, 3, ScalarType.Float16)]
    [InlineData(3, 1, 2, 1, 3, ScalarType.Float32)]
    [InlineData(2, 0, 2, 3, 4, ScalarType.BFloat16)]
    public void ShardedDirectoryLoadsEachRanksZeroInitPartitionOfItsTensorSlice(int shards, int tpRank, int tp, int dpRank, int dp, ScalarType dtype)
    {
        var whole = Whole(16, dtype);
        var path = HfDirectory($"hf{shards}{tpRank}{tp}{dpRank}{dp}{dtype}", whole, shards);
        var mpu = new PlacedRank(tpRank, tp, dpRank, dp);
        using var model = new ZeroInit(dpRank, dp).Partition(new Model(16, tp));
        try
        {
            long read = WholeModelWeights.Load(model, path, mpu);
            long expectedBytes = 0;
            foreach (var (name, p) in model.named_parameters())
            {
                var part = ZeroInit.Find(p)!;
                var attrs = p.GetParallelAttributes();
                using var local = attrs.TensorModelParallel && tp > 1 ? whole[name].chunk(tp, attrs.PartitionDim)[tpRank] : whole[name].alias();
                using var flat = local.contiguous().view(-1).to(ScalarType.Float32);
                long size = part.Slice.numel(), first = dpRank * size, real = Math.Clamp(flat.numel() - first, 0, size);
                using var expected = zeros(size);
                if (real > 0) expected.narrow(0, 0, real).copy_(flat.narrow(0, first, real));
                Assert.True(PlacedRank.Same(part.Slice, expected), $"{name} tp {tpRank}/{tp} dp {dpRank}/{dp}");
                expectedBytes += real * whole[name].element_size();
            }
            Assert.Equal(expectedBytes, read); // only the partitions' bytes, in the file's dtype
        }
        finally
        {
            foreach (var p in model.parameters()) ZeroInit.Take(p)?.Slice.Dispose();
            foreach (var t in whole.Values) t.Dispose();
        }
    }

    [Fact]
    public void APartitionPastTheFilesVocabularyIsZeroPadded()
    {
        var whole = Whole(13, ScalarType.Float32);
        var path = HfDirectory("padded", whole, 2);
        var mpu = new PlacedRank(1, 2, 1, 2);
        var options = new WholeModelOptions { Vocabulary = new VocabularyPadding(13, 16) };
        using var model = new ZeroInit(1, 2).Partition(new Model(16, 2));
        try
        {
            WholeModelWeights.Load(model, path, mpu, options);
            // Tensor rank 1 holds rows 8-15 (file rows 8-12, then 3 padding rows); data rank 1 the second half of its 48 elements.
            using var rows = zeros(8, 6);
            rows.narrow(0, 0, 5).copy_(whole["emb"].narrow(0, 8, 5));
            Assert.True(PlacedRank.Same(ZeroInit.Find(model.emb)!.Slice, rows.view(-1).narrow(0, 24, 24)));
        }
        finally
        {
            foreach (var p in model.parameters()) ZeroInit.Take(p)?.Slice.Dispose();
            foreach (var t in whole.Values) t.Dispose();
        }
    }

    [Fact]
    public void ABadDirectoryFailsInOneLineNamingTheFileAndTensorAndChangesNothing()
    {
        var whole = Whole(16, ScalarType.Float32);
        string Fails(string path, nn.Module? model = null)
        {
            model ??= new Model(16, 1);
            var e = Assert.ThrowsAny<Exception>(() => WholeModelWeights.Load(model, path));
            Assert.DoesNotContain('\n', e.Message);
            foreach (var p in model.parameters()) Assert.Equal(0, p.abs().sum().item<float>()); // nothing half-loaded
            return e.Message;
        }

        var noIndexEntry = HfDirectory("noentry", whole, 2);
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(noIndexEntry, WeightFiles.IndexFile)))!;
        index["weight_map"]!.AsObject().Remove("down");
        File.WriteAllText(Path.Combine(noIndexEntry, WeightFiles.IndexFile), index.ToJsonString());
        Assert.Contains($"missing tensor 'down' (not in the index '{Path.Combine(noIndexEntry, WeightFiles.IndexFile)}')", Fails(noIndexEntry));

        var truncated = HfDirectory("truncated", whole, 2);
        var shard = Path.Combine(truncated, "model-00002-of-00002.safetensors");
        using (var f = new FileStream(shard, FileMode.Open)) f.SetLength(f.Length - 8);
        var message = Fails(truncated);
        Assert.Contains(shard, message);
        Assert.Contains("truncated", message);

        var missingShard = HfDirectory("missingshard", whole, 2);
        File.Delete(Path.Combine(missingShard, "model-00001-of-00002.safetensors"));
        Assert.Contains("to 'model-00001-of-00002.safetensors', which is not in", Fails(missingShard));

        var ints = new Dictionary<string, Tensor>(whole) { ["norm"] = arange(6, ScalarType.Int32) };
        Assert.Contains("tensor 'norm' (in 'model-00001-of-00003.safetensors') has dtype Int32; a floating-point dtype is needed", Fails(HfDirectory("ints", ints, 3)));

        var vocabulary = Fails(HfDirectory("vocab", Whole(24, ScalarType.Float32), 1), new Model(16, 1));
        Assert.Contains("tensor 'emb' has shape [24, 6] in the file, the model needs [16, 6]", vocabulary);

        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
        File.WriteAllText(Path.Combine(empty, "pytorch_model.bin"), "");
        Assert.Contains("has neither model.safetensors nor model.safetensors.index.json (it has pytorch_model*.bin", Fails(empty));
        foreach (var t in whole.Values) t.Dispose();
    }
}
