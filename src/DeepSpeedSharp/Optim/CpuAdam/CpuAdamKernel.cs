using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DeepSpeedSharp.Optim.CpuAdam;

/// <summary>Which instruction width <see cref="CpuAdamKernel"/> uses. Every path gives bit-identical results.</summary>
public enum CpuAdamPath
{
    /// <summary>One element at a time.</summary>
    Scalar,
    /// <summary>8 floats per operation (AVX2).</summary>
    Vector256,
    /// <summary>16 floats per operation (AVX-512).</summary>
    Vector512,
}

/// <summary>
/// DeepSpeed's CPU Adam step (<c>csrc/adam/cpu_adam_impl.cpp</c>) in C#: one fused pass over fp32 parameters,
/// gradients and both moments that updates them in place and can write a bf16 or fp16 copy of the updated parameters
/// in the same pass.
/// </summary>
/// <remarks>
/// <para>Per element, with the float constants of <see cref="AdamStepArgs"/> (derived in double precision and rounded
/// once, as <c>torch.optim.Adam/AdamW</c> do; bc = 1 − β^t, or 1 without bias correction):</para>
/// <code>
/// if L2 mode and wd ≠ 0:     g = fma(p, wd, g)                    // g + wd·p
/// if AdamW mode and wd ≠ 0:  p = p · (1 − lr·wd)
/// m = fma(g, 1 − β1, m·β1)
/// v = fma(g·g, 1 − β2, v·β2)
/// p = fma(m / (√v / √bc2 + eps), −lr / bc1, p)
/// </code>
/// <para>This is torch's operation order (<c>p.mul_(1 − lr·wd)</c>, <c>m.mul_(β1).add_(g, 1 − β1)</c>,
/// <c>v.mul_(β2).addcmul_(g, g, 1 − β2)</c>, <c>denom = v.sqrt() / √bc2 + eps</c>, <c>p.addcdiv_(m, denom, −lr/bc1)</c>)
/// with DeepSpeed's fused multiply-adds. The scalar, 256-bit and 512-bit paths perform exactly these IEEE operations in
/// this order, so they agree bit for bit; an element's result never depends on how the span is split over threads.</para>
/// <para>Where DeepSpeed's kernel differs from torch (it derives 1 − β and the bias corrections in float and multiplies
/// √v by 1/√bc2 instead of dividing), this follows torch: after 100 steps it stays within ~1e-7 relative of TorchSharp's
/// AdamW/Adam; DeepSpeed's choices would move results by about one float rounding per step.</para>
/// </remarks>
public static partial class CpuAdamKernel
{
    /// <summary>Elements per work item of <see cref="StepParallel"/> (128 KiB of each fp32 stream).</summary>
    public const int ChunkElements = 32 * 1024;

    /// <summary>The widest path this machine accelerates; what <see cref="Step"/> and <see cref="StepParallel"/> use.</summary>
    public static CpuAdamPath BestPath { get; } =
        Vector512.IsHardwareAccelerated ? CpuAdamPath.Vector512
        : Vector256.IsHardwareAccelerated ? CpuAdamPath.Vector256
        : CpuAdamPath.Scalar;

    /// <summary>One Adam/AdamW step on the calling thread.</summary>
    /// <param name="param">fp32 parameters, updated in place.</param>
    /// <param name="grad">Their gradients (same length).</param>
    /// <param name="expAvg">First moment, updated in place (same length).</param>
    /// <param name="expAvgSq">Second moment, updated in place (same length).</param>
    /// <param name="args">Hyper-parameters and step number.</param>
    /// <param name="bf16Out">Empty, or receives the bf16 bits of the updated parameters (same length).</param>
    /// <param name="fp16Out">Empty, or receives the updated parameters as fp16 (same length). At most one of
    /// <paramref name="bf16Out"/> and <paramref name="fp16Out"/> may be given.</param>
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamStepArgs args, Span<ushort> bf16Out = default, Span<Half> fp16Out = default) =>
        StepOnPath(param, grad, expAvg, expAvgSq, args, bf16Out, fp16Out, BestPath);

    /// <summary><see cref="Step"/> on a forced path (tests compare the paths).</summary>
    internal static void StepOnPath(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamStepArgs args, Span<ushort> bf16Out, Span<Half> fp16Out, CpuAdamPath path)
    {
        var low = CheckSpans(param.Length, grad.Length, expAvg.Length, expAvgSq.Length, bf16Out, fp16Out, out var kind);
        var c = args.Coefficients();
        Run(param, grad, expAvg, expAvgSq, c, low, kind, path);
    }

    /// <summary>
    /// One Adam/AdamW step split into <see cref="ChunkElements"/>-element chunks that up to <paramref name="threads"/>
    /// threads (the caller plus thread-pool workers) take in turn. Results are identical to <see cref="Step"/> for any
    /// thread count.
    /// </summary>
    /// <param name="param">fp32 parameters, updated in place.</param>
    /// <param name="grad">Their gradients (same length).</param>
    /// <param name="expAvg">First moment, updated in place (same length).</param>
    /// <param name="expAvgSq">Second moment, updated in place (same length).</param>
    /// <param name="args">Hyper-parameters and step number.</param>
    /// <param name="threads">Maximum number of threads (≥ 1).</param>
    /// <param name="bf16Out">Empty, or receives the bf16 bits of the updated parameters (same length).</param>
    /// <param name="fp16Out">Empty, or receives the updated parameters as fp16 (same length); not with <paramref name="bf16Out"/>.</param>
    public static void StepParallel(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamStepArgs args, int threads, Span<ushort> bf16Out = default, Span<Half> fp16Out = default) =>
        StepParallelOnPath(param, grad, expAvg, expAvgSq, args, threads, bf16Out, fp16Out, BestPath);

    /// <summary><see cref="StepParallel"/> on a forced path.</summary>
    internal static unsafe void StepParallelOnPath(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg,
        Span<float> expAvgSq, in AdamStepArgs args, int threads, Span<ushort> bf16Out, Span<Half> fp16Out, CpuAdamPath path)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "CPU Adam: threads must be >= 1.");
        var low = CheckSpans(param.Length, grad.Length, expAvg.Length, expAvgSq.Length, bf16Out, fp16Out, out var kind);
        var c = args.Coefficients();
        var chunks = (param.Length + ChunkElements - 1) / ChunkElements;
        var workers = Math.Min(threads, chunks);
        if (workers <= 1)
        {
            Run(param, grad, expAvg, expAvgSq, c, low, kind, path);
            return;
        }
        fixed (float* p = param)
        fixed (float* g = grad)
        fixed (float* m = expAvg)
        fixed (float* v = expAvgSq)
        fixed (ushort* o = low)
        {
            var job = new ChunkedJob(p, g, m, v, o, param.Length, chunks, c, kind, path);
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, job.Work);
        }
    }

    private static Span<ushort> CheckSpans(int n, int grad, int expAvg, int expAvgSq, Span<ushort> bf16Out,
        Span<Half> fp16Out, out LowPrecisionKind kind)
    {
        if (grad != n || expAvg != n || expAvgSq != n)
            throw new ArgumentException(
                $"CPU Adam: param, grad, exp_avg and exp_avg_sq must have the same length; got {n}, {grad}, {expAvg}, {expAvgSq}.");
        if (!bf16Out.IsEmpty && !fp16Out.IsEmpty)
            throw new ArgumentException("CPU Adam: give a bf16 output or an fp16 output, not both.");
        var low = !bf16Out.IsEmpty ? bf16Out : MemoryMarshal.Cast<Half, ushort>(fp16Out);
        kind = !bf16Out.IsEmpty ? LowPrecisionKind.BFloat16 : !fp16Out.IsEmpty ? LowPrecisionKind.Float16 : LowPrecisionKind.None;
        if (kind != LowPrecisionKind.None && low.Length != n)
            throw new ArgumentException(
                $"CPU Adam: the {(kind == LowPrecisionKind.BFloat16 ? "bf16" : "fp16")} output has {low.Length} elements, the parameters {n}; they must match.");
        return low;
    }

    /// <summary>The chunks of one parallel step, handed out in order through a shared counter.</summary>
    private sealed unsafe class ChunkedJob(float* p, float* g, float* m, float* v, ushort* o, int length, int chunks,
        AdamCoefficients c, LowPrecisionKind kind, CpuAdamPath path)
    {
        private int _next = -1;

        public void Work(int worker)
        {
            int k;
            while ((k = Interlocked.Increment(ref _next)) < chunks)
            {
                var start = k * ChunkElements;
                var n = Math.Min(ChunkElements, length - start);
                var low = kind == LowPrecisionKind.None ? Span<ushort>.Empty : new Span<ushort>(o + start, n);
                Run(new Span<float>(p + start, n), new ReadOnlySpan<float>(g + start, n), new Span<float>(m + start, n),
                    new Span<float>(v + start, n), c, low, kind, path);
            }
        }
    }
}

/// <summary>Which low-precision copy a kernel pass writes.</summary>
internal enum LowPrecisionKind
{
    None,
    BFloat16,
    Float16,
}
