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
}
