using DeepSpeedSharp.Comm;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Weights;

/// <summary>
/// <see cref="SafeTensorsReader"/> slices and <see cref="WholeModelWeights.Load"/> on one process, with an mpu that
/// places this process at one tensor rank of several: the slice along each partition dimension, only its bytes read,
/// a padded vocabulary, and errors that name the tensor and both shapes.
/// </summary>
public sealed class WholeModelWeightsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("dss-wmw").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>emb [V, 4] split by rows, up [8, 4] by rows, down [4, 8] by columns, norm [4] replicated.</summary>
    private sealed class Split : nn.Module
    {
        public readonly Parameter emb, up, down, norm;

        public Split(long vocabRows, int size) : base("split")
        {
            emb = new Parameter(zeros(vocabRows / size, 4)).MarkTensorModelParallel(partitionDim: 0);
            up = new Parameter(zeros(8 / size, 4)).MarkTensorModelParallel(partitionDim: 0);
            down = new Parameter(zeros(4, 8 / size)).MarkTensorModelParallel(partitionDim: 1);
            norm = new Parameter(zeros(4));
            RegisterComponents();
        }
    }

    private string WholeFile(long vocabRows, out Dictionary<string, Tensor> whole)
    {
        whole = new Dictionary<string, Tensor>
        {
            ["emb"] = arange(vocabRows * 4, ScalarType.Float32).view(vocabRows, 4),
            ["up"] = arange(32, ScalarType.Float32).view(8, 4) + 1000,
            ["down"] = arange(32, ScalarType.Float32).view(4, 8) + 2000,
            ["norm"] = arange(4, ScalarType.Float32) + 3000,
        };
        var path = Path.Combine(dir, $"whole{vocabRows}.safetensors");
        SafeTensors.Write(path, whole);
        return path;
    }

    [Fact]
    public void ReaderSlicesAlongAnyDimensionAndReadsOnlyTheirBytes()
    {
        var path = Path.Combine(dir, "t.safetensors");
        using var t = arange(2 * 6 * 5, ScalarType.Float32).view(2, 6, 5);
        SafeTensors.Write(path, [new("t", t)]);
        using var reader = new SafeTensorsReader(path);
        using (var s = reader.ReadSlice("t", 1, 2, 3)) Assert.True(PlacedRank.Same(s, t.narrow(1, 2, 3)));
        Assert.Equal(2 * 3 * 5 * 4, reader.BytesRead);
        using (var s = reader.ReadSlice("t", 2, 4, 1)) Assert.True(PlacedRank.Same(s, t.narrow(2, 4, 1)));
        using (var s = reader.ReadSlice("t", 0, 1, 1)) Assert.True(PlacedRank.Same(s, t.narrow(0, 1, 1)));
        Assert.Equal((30 + 12 + 30) * 4, reader.BytesRead);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => reader.ReadSlice("t", 1, 4, 3));
        Assert.Contains("'t' [2, 6, 5] has no indices [4, 7) along dimension 1", e.Message);
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 2)]
    [InlineData(3, 4)]
    public void EachTensorRankGetsItsSliceAlongThePartitionDimension(int rank, int size)
    {
        var path = WholeFile(8, out var whole);
        using var model = new Split(8, size);
        WholeModelWeights.Load(model, path, new PlacedRank(rank, size));
        long rows = 8 / size;
        Assert.True(PlacedRank.Same(model.emb, whole["emb"].narrow(0, rank * rows, rows)));
        Assert.True(PlacedRank.Same(model.up, whole["up"].narrow(0, rank * rows, rows)));
        Assert.True(PlacedRank.Same(model.down, whole["down"].narrow(1, rank * rows, rows)));
        Assert.True(PlacedRank.Same(model.norm, whole["norm"]));
    }

    [Fact]
    public void APaddedVocabularyLoadsFromItsRealRowsWithZeroPadding()
    {
        var path = WholeFile(6, out var whole); // 6 real tokens, the model pads to 8 (2 rows per rank at tp 4)
        var options = new WholeModelOptions { Vocabulary = new VocabularyPadding(6, 8) };
        for (int rank = 0; rank < 4; rank++)
        {
            using var model = new Split(8, 4);
            WholeModelWeights.Load(model, path, new PlacedRank(rank, 4), options);
            var expected = cat([whole["emb"], zeros(2, 4)], 0).narrow(0, rank * 2, 2);
            Assert.True(PlacedRank.Same(model.emb, expected), $"rank {rank}");
        }
        using var unpadded = new Split(8, 4);
        var e = Assert.Throws<InvalidDataException>(() => WholeModelWeights.Load(unpadded, path, new PlacedRank(0, 4)));
        Assert.Contains("tensor 'emb' has shape [6, 4] in the file, the model needs [8, 4] (split along dimension 0 over 4 tensor ranks, [2, 4] each)", e.Message);
    }

    [Fact]
    public void SavingCutsThePaddingAndTheFileLoadsBack()
    {
        using var model = new Split(8, 1);
        using (no_grad()) model.emb.copy_(arange(32, ScalarType.Float32).view(8, 4));
        var path = Path.Combine(dir, "saved.safetensors");
        WholeModelWeights.Save(model, path, options: new WholeModelOptions { Vocabulary = new VocabularyPadding(6, 8) });
        using var reader = new SafeTensorsReader(path);
        Assert.Equal(new long[] { 6, 4 }, reader.Entries["emb"].Shape);
        using var emb = reader.Read("emb");
        Assert.True(PlacedRank.Same(emb, model.emb.narrow(0, 0, 6)));
    }

    [Fact]
    public void AMismatchNamesTheTensorAndBothShapesAndChangesNothing()
    {
        var path = WholeFile(8, out _);
        using var model = new Split(12, 2);
        var e = Assert.Throws<InvalidDataException>(() => WholeModelWeights.Load(model, path, new PlacedRank(1, 2)));
        Assert.Equal($"weights '{path}' do not fit the model: tensor 'emb' has shape [8, 4] in the file, the model needs [12, 4] " +
                     "(split along dimension 0 over 2 tensor ranks, [6, 4] each)", e.Message);
        Assert.Equal(0, model.up.abs().sum().item<float>());
        var renamed = new WholeModelOptions { FileName = n => "model." + n };
        e = Assert.Throws<InvalidDataException>(() => WholeModelWeights.Load(new Split(8, 2), path, new PlacedRank(0, 2), renamed));
        Assert.Equal($"weights '{path}' do not fit the model: missing 4 tensors: 'model.emb', 'model.up', 'model.down', 'model.norm'; " +
                     "unexpected 4 tensors: 'down', 'emb', 'norm', 'up' (the model has no such parameters)", e.Message);
    }
}
