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
        int n = group.Size;
        var sent = QuantizedChunks.For(1, partition, BlockQuantizer.WeightBlock, device);
        sent.Quantize(0, mine);
        var received = QuantizedChunks.For(n, partition, BlockQuantizer.WeightBlock, device);
        var full = empty(partition * n, dtype, device).DetachFromDisposeScope();
        var works = new[] { group.AllGatherAsync(received.Values, sent.Values), group.AllGatherAsync(received.Scales, sent.Scales) };
        void Dequantize()
        {
            using var scope = NewDisposeScope();
            for (int r = 0; r < n; r++) received.Dequantize(r, full.narrow(0, r * partition, partition));
        }
        return new PendingGather(full, works, Dequantize, fromPrimary: true, sent.Values, sent.Scales, received.Values, received.Scales);
    }
}
