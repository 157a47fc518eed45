using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// Equal chunks of int8 values and their float32 block scales, laid out as the collectives send them: chunk k's values
/// at [k·Padded, (k+1)·Padded), its scales at [k·Blocks, (k+1)·Blocks). qwZ all-gathers one chunk per rank; qgZ
/// all-to-alls one chunk (or one per owner block) per peer.
/// </summary>
internal sealed class QuantizedChunks : IDisposable
{
    /// <summary><paramref name="chunks"/> chunks of <paramref name="length"/> elements, in blocks of up to <paramref name="maxBlock"/>.</summary>
    public static QuantizedChunks For(int chunks, long length, long maxBlock, Device device) =>
        new(chunks, length, BlockQuantizer.BlockFor(length, maxBlock), device);

    private QuantizedChunks(int chunks, long length, long block, Device device)
    {
        Chunks = chunks;
        Length = length;
        Block = block;
        Padded = BlockQuantizer.Padded(length, block);
        Blocks = BlockQuantizer.Blocks(length, block);
        Values = empty(chunks * Padded, ScalarType.Int8, device).DetachFromDisposeScope();
        Scales = empty(chunks * Blocks, ScalarType.Float32, device).DetachFromDisposeScope();
    }

    public int Chunks { get; }
    public long Length { get; }
    public long Block { get; }
    public long Padded { get; }
    public long Blocks { get; }
    public Tensor Values { get; }
    public Tensor Scales { get; }

    /// <summary>Buffers of the same layout, to receive into.</summary>
    public QuantizedChunks EmptyLike() => new(Chunks, Length, Block, Values.device);

    /// <summary>Quantizes <paramref name="x"/> (<see cref="Length"/> elements) into chunk <paramref name="k"/>.</summary>
    public void Quantize(int k, Tensor x)
    {
        using var values = Values.narrow(0, k * Padded, Padded);
        using var scales = Scales.narrow(0, k * Blocks, Blocks);
        BlockQuantizer.Quantize(x, values, scales, Block);
    }

    /// <summary>Writes (or, with <paramref name="add"/>, adds) chunk <paramref name="k"/>'s dequantized values into <paramref name="target"/>.</summary>
    public void Dequantize(int k, Tensor target, bool add = false)
    {
        using var values = Values.narrow(0, k * Padded, Padded);
        using var scales = Scales.narrow(0, k * Blocks, Blocks);
        if (add) BlockQuantizer.DequantizeAdd(values, scales, target, Block);
        else BlockQuantizer.Dequantize(values, scales, target, Block);
    }

    public void Dispose()
    {
        Values.Dispose();
        Scales.Dispose();
    }
}
