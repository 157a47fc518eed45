using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// The memory-bandwidth baseline of <c>dss bench adam</c>: one pass over the same four fp32 buffers an Adam step uses,
/// with the step's own access pattern — read p, g, m, v and write p, m, v (28 bytes per parameter), on the caller's
/// thread for one thread, else in the same 32 Ki-element chunks claimed in turn by the same number of threads — but only a few multiply-adds per element, like a
/// STREAM triad. What the Adam kernel reaches as a fraction of it is how close it gets to the memory system's limit for
/// its traffic; a memcpy between two other buffers measured neither the same bytes nor the same cache behaviour.
/// </summary>
internal static class AdamStreamBaseline
{
    private const long Chunk = 32 * 1024;

    /// <summary>One pass: p −= a·g; m = b·m + g; v = b·v + g² over the first <paramref name="n"/> elements.</summary>
    public static void Pass(Tensor p, Tensor g, Tensor m, Tensor v, int threads)
    {
        long n = p.numel();
        nint pp = Address(p), gp = Address(g), mp = Address(m), vp = Address(v);
        long chunks = (n + Chunk - 1) / Chunk;
        int workers = (int)Math.Min(threads, chunks);
        if (workers <= 1)
        {
            Triad(pp, gp, mp, vp, 0, n); // as the kernel: one thread runs the whole span on the caller
            return;
        }
        long next = 0;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ =>
        {
            long c;
            while ((c = Interlocked.Increment(ref next) - 1) < chunks)
                Triad(pp, gp, mp, vp, c * Chunk, Math.Min(n, (c + 1) * Chunk));
        });
    }

    private static unsafe void Triad(nint p, nint g, nint m, nint v, long start, long end)
    {
        float* pf = (float*)p, gf = (float*)g, mf = (float*)m, vf = (float*)v;
        var a = Vector256.Create(1e-3f);
        var b = Vector256.Create(0.9f);
        long i = start;
        for (; i + 8 <= end; i += 8)
        {
            var gv = Vector256.Load(gf + i);
            Vector256.Store(Vector256.Load(pf + i) - a * gv, pf + i);
            Vector256.Store(Vector256.Load(mf + i) * b + gv, mf + i);
            Vector256.Store(Vector256.Load(vf + i) * b + gv * gv, vf + i);
        }
        for (; i < end; i++)
        {
            pf[i] -= 1e-3f * gf[i];
            mf[i] = mf[i] * 0.9f + gf[i];
            vf[i] = vf[i] * 0.9f + gf[i] * gf[i];
        }
    }

    /// <summary>The address of a contiguous CPU fp32 tensor's data (native memory: it does not move).</summary>
    private static unsafe nint Address(Tensor t)
    {
        if (t.dtype != ScalarType.Float32 || t.device_type != DeviceType.CPU || !t.is_contiguous())
            throw new ArgumentException("the stream baseline needs contiguous fp32 CPU tensors");
        fixed (byte* data = t.bytes) return (nint)data;
    }
}
