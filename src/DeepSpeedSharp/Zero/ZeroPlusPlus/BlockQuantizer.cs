using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// Symmetric block-wise int8 quantization, as ZeRO++ sends weights (qwZ) and gradients (qgZ): a flat tensor is cut
/// into blocks of <c>blockSize</c> elements (the last one zero-padded), each block gets the scale max|x| / 127, and each
/// element becomes round(x / scale) in [−127, 127]. Deterministic (no stochastic rounding), so every rank that
/// dequantizes the same bytes gets the same values. Contiguous CPU tensors take <see cref="BlockQuantizerKernel"/>'s
/// one-pass SIMD path; others (another device, a strided view) the tensor ops below, with the same results.
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
    /// <paramref name="scales"/> (float32, one per block). Whole blocks are quantized in place of a view (no padded copy);
    /// a partial last block is padded on its own.
    /// </summary>
    public static void Quantize(Tensor x, Tensor values, Tensor scales, long blockSize)
    {
        if (BlockQuantizerKernel.CanRead(x) && BlockQuantizerKernel.CanHold(values, scales))
        {
            BlockQuantizerKernel.Quantize(x, values, scales, blockSize);
            return;
        }
        QuantizeWithTensorOps(x, values, scales, blockSize);
    }

    /// <summary><see cref="Quantize"/> with tensor ops on any device and layout (the reference the kernel is tested against).</summary>
    internal static void QuantizeWithTensorOps(Tensor x, Tensor values, Tensor scales, long blockSize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = x.reshape(-1);
        long n = flat.numel(), whole = n / blockSize;
        if (whole > 0)
            QuantizeBlocks(flat.narrow(0, 0, whole * blockSize).view(whole, blockSize), values.narrow(0, 0, whole * blockSize).view(whole, blockSize),
                scales.narrow(0, 0, whole).view(whole, 1));
        long tail = n - whole * blockSize;
        if (tail > 0 || n == 0)
        {
            var last = nn.functional.pad(flat.narrow(0, whole * blockSize, tail).to(ScalarType.Float32), [0, blockSize - tail]);
            QuantizeBlocks(last.view(1, blockSize), values.narrow(0, whole * blockSize, blockSize).view(1, blockSize), scales.narrow(0, whole, 1).view(1, 1));
        }
    }

    /// <summary>Quantizes the rows of <paramref name="grid"/> (blocks × block size) with one scale per row.</summary>
    private static void QuantizeBlocks(Tensor grid, Tensor values, Tensor scales)
    {
        var scale = grid.abs().amax([1], keepdim: true).to(ScalarType.Float32).div_(127f);
        scale.masked_fill_(scale.eq(0), 1f);
        values.copy_(grid.to(ScalarType.Float32).div(scale).round_().clamp_(-127, 127)); // integral values: the int8 cast is exact
        scales.copy_(scale);
    }

    /// <summary>Writes the first <c>target.numel()</c> dequantized elements of (<paramref name="values"/>, <paramref name="scales"/>) into <paramref name="target"/>.</summary>
    public static void Dequantize(Tensor values, Tensor scales, Tensor target, long blockSize) => Dequantize(values, scales, target, blockSize, add: false);

    /// <summary>Adds the dequantized first <c>target.numel()</c> elements into the float32 <paramref name="target"/>.</summary>
    public static void DequantizeAdd(Tensor values, Tensor scales, Tensor target, long blockSize) => Dequantize(values, scales, target, blockSize, add: true);

    private static void Dequantize(Tensor values, Tensor scales, Tensor target, long blockSize, bool add)
    {
        if (BlockQuantizerKernel.CanWrite(target, add) && BlockQuantizerKernel.CanHold(values, scales))
        {
            BlockQuantizerKernel.Dequantize(values, scales, target, blockSize, add);
            return;
        }
        DequantizeWithTensorOps(values, scales, target, blockSize, add);
    }

    /// <summary>Dequantization with tensor ops on any device and layout (the reference the kernel is tested against).</summary>
    internal static void DequantizeWithTensorOps(Tensor values, Tensor scales, Tensor target, long blockSize, bool add)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long blocks = scales.numel();
        var full = values.view(blocks, blockSize).to(ScalarType.Float32).mul_(scales.view(blocks, 1)).view(-1).narrow(0, 0, target.numel());
        var flat = target.view(-1);
        if (add) flat.add_(full);
        else flat.copy_(full);
    }
}
