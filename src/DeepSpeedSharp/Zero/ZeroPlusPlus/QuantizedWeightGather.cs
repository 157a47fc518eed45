using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// ZeRO++ qwZ: the all-gather of a parameter's primary partitions sends each rank's partition as block-wise int8 with
/// float32 scales (up to <see cref="BlockQuantizer.WeightBlock"/> elements per scale) and dequantizes on arrival, about half the
/// bytes of 16-bit weights and a quarter of fp32. The partition is quantized from the master weights.
/// </summary>
internal static class QuantizedWeightGather
{
    /// <summary>Starts gathering the partitions (<paramref name="mine"/> is this rank's, <paramref name="partition"/> elements) into a full value of <paramref name="dtype"/>.</summary>
    public static PendingGather Begin(Tensor mine, long partition, ProcessGroup group, ScalarType dtype, Device device)
    {
        long block = BlockQuantizer.BlockFor(partition, BlockQuantizer.WeightBlock);
        long padded = BlockQuantizer.Padded(partition, block), blocks = BlockQuantizer.Blocks(partition, block);
        int n = group.Size;
        var values = empty(padded, ScalarType.Int8, device).DetachFromDisposeScope();
        var scales = empty(blocks, ScalarType.Float32, device).DetachFromDisposeScope();
        BlockQuantizer.Quantize(mine, values, scales, block);
        var allValues = empty(padded * n, ScalarType.Int8, device).DetachFromDisposeScope();
        var allScales = empty(blocks * n, ScalarType.Float32, device).DetachFromDisposeScope();
        var full = empty(partition * n, dtype, device).DetachFromDisposeScope();
        var works = new[] { group.AllGatherAsync(allValues, values), group.AllGatherAsync(allScales, scales) };
        void Dequantize()
        {
            using var scope = NewDisposeScope();
            for (int r = 0; r < n; r++)
                BlockQuantizer.Dequantize(allValues.narrow(0, r * padded, padded), allScales.narrow(0, r * blocks, blocks),
                    full.narrow(0, r * partition, partition), block);
        }
        return new PendingGather(full, works, Dequantize, fromPrimary: true, values, scales, allValues, allScales);
    }
}
