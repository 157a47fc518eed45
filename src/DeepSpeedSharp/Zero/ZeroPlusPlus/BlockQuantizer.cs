using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// Symmetric block-wise int8 quantization, as ZeRO++ sends weights (qwZ) and gradients (qgZ): a flat tensor is cut
/// into blocks of <c>blockSize</c> elements (the last one zero-padded), each block gets the scale max|x| / 127, and each
/// element becomes round(x / scale) in [−127, 127]. Deterministic (no stochastic rounding), so every rank that
/// dequantizes the same bytes gets the same values.
/// </summary>
internal static class BlockQuantizer
{
    /// <summary>Block size of quantized weights (qwZ).</summary>
    public const long WeightBlock = 2048;

    /// <summary>Block size of quantized gradients (qgZ): smaller blocks, as gradients span a wider range.</summary>
    public const long GradientBlock = 512;

    /// <summary>
    /// The block size for <paramref name="count"/> elements: as few blocks as <paramref name="maxBlock"/> allows, of equal
    /// size, so padding stays under one element per block (a 3,000-element partition gets two blocks of 1,500, a
    /// 10-element one a single block of 10).
    /// </summary>
    public static long BlockFor(long count, long maxBlock)
    {
        long blocks = Math.Max(1, (count + maxBlock - 1) / maxBlock);
        return Math.Max(1, (count + blocks - 1) / blocks);
    }

    /// <summary>Number of blocks covering <paramref name="count"/> elements.</summary>
    public static long Blocks(long count, long blockSize) => Math.Max(1, (count + blockSize - 1) / blockSize);

    /// <summary>Elements after padding <paramref name="count"/> to whole blocks.</summary>
    public static long Padded(long count, long blockSize) => Blocks(count, blockSize) * blockSize;

    /// <summary>
    /// Quantizes the flat <paramref name="x"/> into <paramref name="values"/> (int8, <see cref="Padded"/> elements) and
    /// <paramref name="scales"/> (float32, one per block).
    /// </summary>
    public static void Quantize(Tensor x, Tensor values, Tensor scales, long blockSize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long n = x.numel(), blocks = Blocks(n, blockSize);
        var flat = x.reshape(-1).to(ScalarType.Float32);
        if (n != blocks * blockSize) flat = nn.functional.pad(flat, [0, blocks * blockSize - n]);
        var grid = flat.view(blocks, blockSize);
        var scale = grid.abs().amax([1], keepdim: true).div_(127f);
        scale.masked_fill_(scale.eq(0), 1f);
        values.view(blocks, blockSize).copy_(grid.div(scale).round_().clamp_(-127, 127).to(ScalarType.Int8));
        scales.view(blocks, 1).copy_(scale);
    }

    /// <summary>Writes the first <c>target.numel()</c> dequantized elements of (<paramref name="values"/>, <paramref name="scales"/>) into <paramref name="target"/>.</summary>
    public static void Dequantize(Tensor values, Tensor scales, Tensor target, long blockSize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long blocks = scales.numel();
        var full = values.view(blocks, blockSize).to(ScalarType.Float32).mul_(scales.view(blocks, 1)).view(-1);
        target.view(-1).copy_(full.narrow(0, 0, target.numel()));
    }

    /// <summary>Adds the dequantized first <c>target.numel()</c> elements into the float32 <paramref name="target"/>.</summary>
    public static void DequantizeAdd(Tensor values, Tensor scales, Tensor target, long blockSize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long blocks = scales.numel();
        var full = values.view(blocks, blockSize).to(ScalarType.Float32).mul_(scales.view(blocks, 1)).view(-1);
        target.view(-1).add_(full.narrow(0, 0, target.numel()));
    }
}
