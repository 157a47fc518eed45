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
/// A rank's own blocks are never quantized: it adds its float32 values where its received contribution would go (half the
/// quantization work with 2 ranks per group, and the exact value of one term of every sum). Only the second hop leaves the host: about (H−1)/H × partition bytes of int8 per rank, instead of
/// (N−L)/N × the fp32 gradient. A hop over a group of one is skipped (nothing is quantized there). Every owner's block
/// is quantized on its own (up to <see cref="BlockQuantizer.GradientBlock"/> elements per scale), straight from the
/// packed gradients; sums run in a fixed order, so the result is deterministic.
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
        Tensor Owner(int dpRank) => input.narrow(0, dpRank * stride, stride);
        // Hop 1 (inside the host): local rank j gets the blocks of the owners (h, j), h = 0..H-1.
        Func<int, Tensor> partial;
        if (locals == 1) partial = h => Owner(ownersByLocal[0][h]);
        else
        {
            var sums = Exchange(intra, (j, h) => Owner(ownersByLocal[j][h]), hosts, stride);
            partial = h => sums.narrow(0, h * stride, stride);
        }
        // Hop 2 (across hosts): partial sum h goes to host h.
        if (hosts == 1) output.copy_(partial(0));
        else output.copy_(Exchange(inter, (h, _) => partial(h), 1, stride));
    }

    /// <summary>
    /// Quantizes, for every other member k, the <paramref name="perPeer"/> blocks <paramref name="block"/>(k, i); all-to-alls
    /// values and scales; and sums what arrives, member by member in order, into perPeer float32 blocks.
    /// </summary>
    private static Tensor Exchange(ProcessGroup group, Func<int, int, Tensor> block, int perPeer, long stride)
    {
        int n = group.Size, me = group.Rank;
        var device = block(0, 0).device;
        using var sent = QuantizedChunks.For(n * perPeer, stride, BlockQuantizer.GradientBlock, device);
        for (int k = 0; k < n; k++)
            for (int i = 0; i < perPeer && k != me; i++) sent.Quantize(k * perPeer + i, block(k, i)); // my own blocks stay float32
        using var received = sent.EmptyLike();
        var a = group.AllToAllAsync(received.Values, sent.Values);
        var b = group.AllToAllAsync(received.Scales, sent.Scales);
        a.Wait();
        b.Wait();
        var sum = empty(perPeer * stride, ScalarType.Float32, device);
        for (int k = 0; k < n; k++)
            for (int i = 0; i < perPeer; i++)
            {
                using var target = sum.narrow(0, i * stride, stride);
                if (k == me) { if (k == 0) target.copy_(block(k, i)); else target.add_(block(k, i)); }
                else received.Dequantize(k * perPeer + i, target, add: k > 0);
            }
        return sum;
    }
}
