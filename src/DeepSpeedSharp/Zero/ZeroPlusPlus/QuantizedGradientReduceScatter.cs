using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// ZeRO++ qgZ: a reduce-scatter of float32 gradients that sends block-wise int8 in two hops, as the ZeRO++ paper's
/// hierarchical all-to-all does. With the data-parallel group laid out as H hosts × L ranks:
/// <list type="number">
/// <item>inside the host, each rank quantizes, for every local index j, the H blocks whose owners have local index j,
/// and an all-to-all hands them to local rank j, which dequantizes and sums the L contributions in float32;</item>
/// <item>across hosts, among the ranks of one local index, each quantizes its H partial sums, an all-to-all hands partial
/// sum h to host h, and the owner sums the H contributions in float32.</item>
/// </list>
/// Only the second hop leaves the host: about (H−1)/H × partition bytes of int8 per rank, instead of
/// (N−L)/N × the fp32 gradient. A hop over a group of one is skipped (nothing is quantized there). Sums run in a
/// fixed order, so the result is deterministic.
/// </summary>
internal sealed class QuantizedGradientReduceScatter
{
    private readonly ProcessGroup intra, inter;
    private readonly int[][] ownersByLocal; // [local index j][host h] = data-parallel rank of the owner

    /// <param name="intra">This rank's host's members of the data-parallel group.</param>
    /// <param name="inter">The data-parallel ranks with this rank's local index, one per host, in host order.</param>
    /// <param name="ownersByLocal">For each local index j and host h, the data-parallel rank that owns that block.</param>
    public QuantizedGradientReduceScatter(ProcessGroup intra, ProcessGroup inter, int[][] ownersByLocal)
    {
        this.intra = intra;
        this.inter = inter;
        this.ownersByLocal = ownersByLocal;
    }

    /// <summary>
    /// Sums <paramref name="input"/> (the group's blocks of <paramref name="stride"/> elements in data-parallel rank order)
    /// over the group and writes this rank's block into <paramref name="output"/> (float32).
    /// </summary>
    public void Run(Tensor output, Tensor input, long stride)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int hosts = inter.Size, locals = intra.Size;
        // Hop 1 (inside the host): for local index j, the blocks of the owners (h, j), h = 0..H-1.
        var byLocal = new Tensor[locals];
        for (int j = 0; j < locals; j++)
            byLocal[j] = cat(ownersByLocal[j].Select(d => input.narrow(0, d * stride, stride)).ToArray());
        var partial = locals == 1 ? byLocal[0] : Exchange(intra, byLocal, hosts * stride);
        // Hop 2 (across hosts): partial sum h goes to host h.
        if (hosts == 1) output.copy_(partial);
        else output.copy_(Exchange(inter, Enumerable.Range(0, hosts).Select(h => partial.narrow(0, h * stride, stride)).ToArray(), stride));
    }

    /// <summary>Quantizes chunk k for member k, all-to-alls values and scales, and sums what arrives in member order.</summary>
    private static Tensor Exchange(ProcessGroup group, Tensor[] chunks, long length)
    {
        int n = group.Size;
        long block = BlockQuantizer.BlockFor(length, BlockQuantizer.GradientBlock);
        long padded = BlockQuantizer.Padded(length, block), blocks = BlockQuantizer.Blocks(length, block);
        var device = chunks[0].device;
        var values = empty(padded * n, ScalarType.Int8, device);
        var scales = empty(blocks * n, ScalarType.Float32, device);
        for (int k = 0; k < n; k++)
            BlockQuantizer.Quantize(chunks[k], values.narrow(0, k * padded, padded), scales.narrow(0, k * blocks, blocks), block);
        var gotValues = empty_like(values);
        var gotScales = empty_like(scales);
        var a = group.AllToAllAsync(gotValues, values);
        var b = group.AllToAllAsync(gotScales, scales);
        a.Wait();
        b.Wait();
        var sum = zeros(length, ScalarType.Float32, device);
        for (int k = 0; k < n; k++)
            BlockQuantizer.DequantizeAdd(gotValues.narrow(0, k * padded, padded), gotScales.narrow(0, k * blocks, blocks), sum, block);
        return sum;
    }
}
