using DeepSpeedSharp.Zero.ZeroPlusPlus;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>ZeRO++'s int8 block quantization: block sizing, the rounding bound, zero blocks and padding.</summary>
public class BlockQuantizerTests
{
    [Theory]
    [InlineData(10, 2048, 10)]
    [InlineData(2048, 2048, 2048)]
    [InlineData(3000, 2048, 1500)]
    [InlineData(4097, 2048, 1366)]
    [InlineData(1, 512, 1)]
    public void BlocksAreAsFewAsAllowedAndEqual(long count, long max, long expected)
    {
        long block = BlockQuantizer.BlockFor(count, max);
        Assert.Equal(expected, block);
        Assert.True(BlockQuantizer.Padded(count, block) - count < BlockQuantizer.Blocks(count, block), "padding is under one element per block");
    }

    [Fact]
    public void DequantizedValuesAreWithinHalfAStepOfEachBlocksMaximum()
    {
        using var scope = NewDisposeScope();
        using var g = new torch.Generator(7);
        long n = 3000, block = BlockQuantizer.BlockFor(n, 2048);
        var x = randn(n, generator: g);
        x.narrow(0, 1500, 1500).mul_(100); // the second block has a 100× larger range: its own scale
        var values = empty(BlockQuantizer.Padded(n, block), ScalarType.Int8);
        var scales = empty(BlockQuantizer.Blocks(n, block));
        BlockQuantizer.Quantize(x, values, scales, block);
        var back = empty(n);
        BlockQuantizer.Dequantize(values, scales, back, block);
        for (int b = 0; b < 2; b++)
        {
            var xb = x.narrow(0, b * 1500, 1500);
            double step = xb.abs().max().item<float>() / 127.0;
            double err = (back.narrow(0, b * 1500, 1500) - xb).abs().max().item<float>();
            Assert.True(err <= step / 2 * 1.0001, $"block {b}: error {err} > half a step {step / 2}");
        }
        Assert.Equal(127, values.abs().max().item<sbyte>()); // each block's maximum maps to ±127
    }

    [Fact]
    public void AZeroBlockStaysZeroAndDequantizeAddAccumulates()
    {
        using var scope = NewDisposeScope();
        var x = zeros(10);
        var values = empty(10, ScalarType.Int8);
        var scales = empty(1);
        BlockQuantizer.Quantize(x, values, scales, 10);
        Assert.Equal(1f, scales.item<float>());
        var acc = ones(10);
        BlockQuantizer.DequantizeAdd(values, scales, acc, 10);
        Assert.Equal(10f, acc.sum().item<float>());
    }

    /// <summary>
    /// The one-pass SIMD kernel (contiguous CPU tensors) gives the very bytes, scales and values of the tensor-op path:
    /// float32 and bfloat16 inputs, whole and partial blocks, lengths that are not a multiple of the vector width,
    /// rounding ties (x / scale = k + 0.5 must round to even) and an all-zero block.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, 3000, 2048)]
    [InlineData(ScalarType.Float32, 1537, 512)]
    [InlineData(ScalarType.BFloat16, 3000, 2048)]
    [InlineData(ScalarType.BFloat16, 77, 512)]
    [InlineData(ScalarType.Float32, 0, 512)]
    public void TheSimdKernelEqualsTheTensorOpsBitForBit(ScalarType dtype, long n, long max)
    {
        using var scope = NewDisposeScope();
        using var g = new torch.Generator(11);
        long block = BlockQuantizer.BlockFor(n, max);
        var x = randn(n, generator: g);
        if (n > 40)
        {
            x.narrow(0, 0, 20).copy_(arange(-10, 10).mul(0.5f)); // with max |x| = 127 × 0.5 below: x / scale hits k + 0.5 ties
            x[20] = 63.5f;
            if (n >= 2 * block) x.narrow(0, block, block).zero_(); // an all-zero block: scale 1
        }
        x = x.to(dtype);
        var (kv, ks) = (full(BlockQuantizer.Padded(n, block), 99, ScalarType.Int8), empty(BlockQuantizer.Blocks(n, block)));
        var (tv, ts) = (full(BlockQuantizer.Padded(n, block), 99, ScalarType.Int8), empty(BlockQuantizer.Blocks(n, block)));
        Assert.True(BlockQuantizerKernel.CanRead(x));
        BlockQuantizer.Quantize(x, kv, ks, block);
        BlockQuantizer.QuantizeWithTensorOps(x, tv, ts, block);
        Assert.True(kv.eq(tv).all().item<bool>(), "int8 values differ");
        Assert.True(ks.eq(ts).all().item<bool>(), "scales differ");

        var start = randn(n, generator: g);
        foreach (bool add in new[] { false, true })
        {
            var (k, t) = (start.clone(), start.clone());
            if (add) BlockQuantizer.DequantizeAdd(kv, ks, k, block); else BlockQuantizer.Dequantize(kv, ks, k, block);
            BlockQuantizer.DequantizeWithTensorOps(tv, ts, t, block, add);
            Assert.True(k.eq(t).all().item<bool>(), $"dequantized values differ (add: {add})");
        }
        // Into bfloat16 (qwZ's gathered 16-bit weights): rounded to nearest even, as the tensor copy does.
        var (kb, tb) = (zeros(n, ScalarType.BFloat16), zeros(n, ScalarType.BFloat16));
        Assert.True(BlockQuantizerKernel.CanWrite(kb, add: false));
        BlockQuantizer.Dequantize(kv, ks, kb, block);
        BlockQuantizer.DequantizeWithTensorOps(tv, ts, tb, block, add: false);
        Assert.True(kb.eq(tb).all().item<bool>(), "dequantized bfloat16 values differ");
    }
}
