using System.Runtime.InteropServices;
using DeepSpeedSharp.Checkpoint;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// The export's managed element conversions give the bits of libtorch's <c>Tensor.to(dtype)</c>: float32 → bfloat16 /
/// float16 (round to nearest even, ties, subnormals, overflow, infinities; NaN stays NaN) and float64 / bfloat16 /
/// float16 → float32; and the shard sizes and plans of a Hugging Face directory.
/// </summary>
public sealed class ExportConversionTests
{
    /// <summary>Random values over many magnitudes, and the edge cases of both 16-bit formats.</summary>
    private static float[] Values()
    {
        var rng = new Random(5);
        var values = new List<float>
        {
            0f, -0f, 1f, -1f, float.MaxValue, float.MinValue, float.Epsilon, -float.Epsilon, 1e-40f, 1.17549435e-38f,
            float.PositiveInfinity, float.NegativeInfinity, 65504f, 65519f, 65520f, 65536f, -70000f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 1e-9f,
            BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x3F818000), // bf16 ties: to even, down and up
            BitConverter.UInt32BitsToSingle(0x3F801000), BitConverter.UInt32BitsToSingle(0x3F803000), // fp16 ties
            BitConverter.UInt32BitsToSingle(0x7F7FFFFF), BitConverter.UInt32BitsToSingle(0x7F7F8000),
        };
        for (int i = 0; i < 20_000; i++)
            values.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-45, 39))));
        return values.ToArray();
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Float32IsRoundedAsTorchRoundsIt(ScalarType type)
    {
        var values = Values();
        using var source = tensor(values);
        using var expected = source.to(type);
        var got = new byte[values.Length * 2];
        TensorElements.FromFloat(values, type, got);
        var want = MemoryMarshal.Cast<byte, ushort>(expected.bytes);
        var mine = MemoryMarshal.Cast<byte, ushort>(got);
        for (int i = 0; i < values.Length; i++)
            Assert.True(want[i] == mine[i], $"{values[i]:R} (0x{BitConverter.SingleToUInt32Bits(values[i]):X8}) as {type}: torch 0x{want[i]:X4}, export 0x{mine[i]:X4}");

        var nan = new byte[4];
        TensorElements.FromFloat([float.NaN, -float.NaN], type, nan);
        var halves = MemoryMarshal.Cast<byte, ushort>(nan);
        foreach (var h in halves.ToArray())
            Assert.True(type == ScalarType.BFloat16 ? float.IsNaN(BitConverter.UInt32BitsToSingle((uint)h << 16)) : Half.IsNaN(BitConverter.UInt16BitsToHalf(h)), $"NaN became 0x{h:X4}");
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float32)]
    public void OtherFloatingTypesWidenToFloat32AsTorchDoes(ScalarType type)
    {
        var rng = new Random(11);
        var doubles = Enumerable.Range(0, 5000).Select(_ => (rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-50, 50)))
            .Concat([0.0, double.MaxValue, double.Epsilon, double.PositiveInfinity, 1e-320]).ToArray();
        using var wide = tensor(doubles);
        using var source = wide.to(type);
        using var expected = source.to(ScalarType.Float32);
        var got = new float[doubles.Length];
        TensorElements.ToFloat(source.bytes, type, got);
        Assert.True(MemoryMarshal.AsBytes(got.AsSpan()).SequenceEqual(expected.bytes), $"{type} → float32 differs from torch");
    }

    [Theory]
    [InlineData("5GB", 5_000_000_000L)]
    [InlineData("500MB", 500_000_000L)]
    [InlineData("100KB", 100_000L)]
    [InlineData("1000", 1000L)]
    [InlineData("1000B", 1000L)]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("1.5gb", 1_500_000_000L)]
    [InlineData("10 MB", 10_000_000L)]
    public void ShardSizesAreReadAsTransformersReadsThem(string text, long bytes) => Assert.Equal(bytes, HuggingFaceShards.ParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("5XB")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("GB")]
    [InlineData("99999999999TB")]
    public void AnythingElseIsNoShardSize(string text) => Assert.Null(HuggingFaceShards.ParseSize(text));

    [Fact]
    public void ShardsFollowTheTensorOrderAndALargeTensorGetsItsOwn()
    {
        string Plan(long max, params long[] sizes) =>
            string.Join(" | ", HuggingFaceShards.Plan(sizes, max).Select(s => string.Join(",", s)));
        Assert.Equal("0,1 | 2", Plan(6, 3, 3, 3));
        Assert.Equal("0 | 1,2", Plan(5, 10, 1, 1));
        Assert.Equal("0 | 1 | 2", Plan(5, 1, 10, 1));
        Assert.Equal("0,1,2", Plan(100, 1, 10, 1));
        Assert.Equal("", Plan(5));
        Assert.Single(HuggingFaceShards.Plan([], 5));
        Assert.Equal(["model.safetensors"], HuggingFaceShards.FileNames(1));
        Assert.Equal(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], HuggingFaceShards.FileNames(2));
    }
}
