using System.Runtime.InteropServices;
using DeepSpeedSharp.Optim.CpuAdam;

namespace DeepSpeedSharp.Tests.CpuAdam;

/// <summary><see cref="CpuAdamKernel"/>: every path and thread count gives the same bits; the math matches a
/// double-precision loop; bad input is rejected.</summary>
public class CpuAdamKernelTests
{
    /// <summary>The four fp32 arrays of one kernel state.</summary>
    private sealed record Buffers(float[] P, float[] G, float[] M, float[] V, ushort[] Low)
    {
        public static Buffers Create(int n, int seed) =>
            new(CpuAdamTestData.Random(n, seed), CpuAdamTestData.Random(n, seed + 1, 0.01f), new float[n], new float[n], new ushort[n]);

        public Buffers Copy() => new((float[])P.Clone(), (float[])G.Clone(), (float[])M.Clone(), (float[])V.Clone(), (ushort[])Low.Clone());

        public Span<ushort> Bf16(int kind) => kind == 1 ? Low : default;

        public Span<Half> Fp16(int kind) => kind == 2 ? MemoryMarshal.Cast<ushort, Half>(Low.AsSpan()) : default;

        /// <summary>Asserts every array equals <paramref name="other"/>'s bit for bit.</summary>
        public void AssertBitIdentical(Buffers other, string what)
        {
            AssertSame(P, other.P, $"{what} param");
            AssertSame(M, other.M, $"{what} exp_avg");
            AssertSame(V, other.V, $"{what} exp_avg_sq");
            Assert.True(Low.AsSpan().SequenceEqual(other.Low), $"{what}: low-precision copies differ");
        }

        private static void AssertSame(float[] a, float[] b, string what)
        {
            var ia = MemoryMarshal.Cast<float, uint>(a.AsSpan());
            var ib = MemoryMarshal.Cast<float, uint>(b.AsSpan());
            for (var i = 0; i < ia.Length; i++)
                if (ia[i] != ib[i]) Assert.Fail($"{what}[{i}]: {a[i]:R} vs {b[i]:R}");
        }
    }

    private static AdamStepArgs Args(long step, bool adamW, double wd, bool biasCorrection) =>
        new(Lr: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: wd, Step: step, BiasCorrection: biasCorrection, AdamWMode: adamW);

    [Theory]
    [InlineData(0, true, 0.1, true, 0)]
    [InlineData(1, true, 0.1, true, 1)]
    [InlineData(17, false, 0.05, true, 2)]
    [InlineData(17, true, 0.0, false, 1)]
    [InlineData(1000, false, 0.0, true, 0)]
    [InlineData(1_000_003, true, 0.01, true, 1)]
    [InlineData(1_000_003, false, 0.01, false, 2)]
    public void SimdPathsAreBitIdenticalToScalar(int n, bool adamW, double wd, bool biasCorrection, int lowKind)
    {
        var scalar = Buffers.Create(n, 10);
        var v256 = scalar.Copy();
        var v512 = scalar.Copy();
        for (var step = 1; step <= 3; step++)
        {
            var args = Args(step, adamW, wd, biasCorrection);
            foreach (var (b, path) in new[] { (scalar, CpuAdamPath.Scalar), (v256, CpuAdamPath.Vector256), (v512, CpuAdamPath.Vector512) })
                CpuAdamKernel.StepOnPath(b.P, b.G, b.M, b.V, args, b.Bf16(lowKind), b.Fp16(lowKind), path);
        }
        v256.AssertBitIdentical(scalar, "Vector256 vs scalar");
        v512.AssertBitIdentical(scalar, "Vector512 vs scalar");
        if (n > 0) Assert.NotEqual(CpuAdamTestData.Random(n, 10)[0], scalar.P[0]); // the step really moved the parameters
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void ThreadCountsGiveIdenticalResults(int lowKind)
    {
        const int n = 3 * CpuAdamKernel.ChunkElements + 1001; // four chunks, the last one short and odd
        var single = Buffers.Create(n, 20);
        var two = single.Copy();
        var three = single.Copy();
        for (var step = 1; step <= 3; step++)
        {
            var args = Args(step, true, 0.1, true);
            CpuAdamKernel.Step(single.P, single.G, single.M, single.V, args, single.Bf16(lowKind), single.Fp16(lowKind));
            CpuAdamKernel.StepParallel(two.P, two.G, two.M, two.V, args, 2, two.Bf16(lowKind), two.Fp16(lowKind));
            CpuAdamKernel.StepParallel(three.P, three.G, three.M, three.V, args, 3, three.Bf16(lowKind), three.Fp16(lowKind));
        }
        two.AssertBitIdentical(single, "2 threads vs 1");
        three.AssertBitIdentical(single, "3 threads vs 1");
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void MatchesDoublePrecisionReferenceLoopAfter100Steps(bool biasCorrection, bool adamW)
    {
        const int n = 1001;
        const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
        var p = CpuAdamTestData.Random(n, 30);
        float[] m = new float[n], v = new float[n];
        var pd = p.Select(x => (double)x).ToArray();
        double[] md = new double[n], vd = new double[n];
        for (var t = 1; t <= 100; t++)
        {
            var g = CpuAdamTestData.Random(n, 1000 + t, 0.1f);
            CpuAdamKernel.Step(p, g, m, v, new AdamStepArgs(lr, b1, b2, eps, wd, t, biasCorrection, adamW));
            var bc1 = biasCorrection ? 1 - Math.Pow(b1, t) : 1;
            var bc2 = biasCorrection ? 1 - Math.Pow(b2, t) : 1;
            for (var i = 0; i < n; i++)
            {
                var gi = adamW ? g[i] : g[i] + wd * pd[i];
                md[i] = b1 * md[i] + (1 - b1) * gi;
                vd[i] = b2 * vd[i] + (1 - b2) * gi * gi;
                var update = md[i] / bc1 / (Math.Sqrt(vd[i] / bc2) + eps);
                if (adamW) update += wd * pd[i];
                pd[i] -= lr * update;
            }
        }
        var scale = pd.Max(Math.Abs);
        var worst = Enumerable.Range(0, n).Max(i => Math.Abs(p[i] - pd[i])) / scale;
        // fp32 against fp64 over 100 steps: the parameter is rounded about three times per step, ~1e-6 accumulates.
        // A math error (a missing bias correction, decay applied twice) is off by 1e-3 or more.
        Assert.True(worst < 5e-6, $"max relative difference {worst}");
        var momentScale = md.Max(Math.Abs);
        Assert.True(Enumerable.Range(0, n).Max(i => Math.Abs(m[i] - md[i])) / momentScale < 1e-5);
    }

    [Fact]
    public void FirstStepOfAdamIsLrTimesSignOfGradient()
    {
        // Step 1 with bias correction: m̂ = g, v̂ = g², so p -= lr · g / (|g| + eps) ≈ lr · sign(g).
        float[] p = { 1f, 1f, 1f }, g = { 0.5f, -2f, 0f }, m = new float[3], v = new float[3];
        CpuAdamKernel.Step(p, g, m, v, new AdamStepArgs(0.1, 0.9, 0.999, 1e-8, 0, 1));
        Assert.Equal(0.9f, p[0], 6);
        Assert.Equal(1.1f, p[1], 6);
        Assert.Equal(1f, p[2]);
    }

    [Fact]
    public void BadInputIsRejectedWithClearErrors()
    {
        float[] a = new float[4], b = new float[3];
        var args = new AdamStepArgs(1e-3, 0.9, 0.999, 1e-8, 0, 1);
        Assert.Contains("same length; got 4, 3, 4, 4",
            Assert.Throws<ArgumentException>(() => CpuAdamKernel.Step(a, b, new float[4], new float[4], args)).Message);
        Assert.Contains("not both", Assert.Throws<ArgumentException>(() =>
            CpuAdamKernel.Step(a, a, new float[4], new float[4], args, new ushort[4], new Half[4])).Message);
        Assert.Contains("bf16 output has 3 elements", Assert.Throws<ArgumentException>(() =>
            CpuAdamKernel.Step(a, a, new float[4], new float[4], args, new ushort[3])).Message);
        Assert.Contains("step must be >= 1", Assert.Throws<ArgumentException>(() =>
            CpuAdamKernel.Step(a, a, new float[4], new float[4], args with { Step = 0 })).Message);
        Assert.Contains("betas[1]", Assert.Throws<ArgumentException>(() =>
            CpuAdamKernel.Step(a, a, new float[4], new float[4], args with { Beta2 = 1 })).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuAdamKernel.StepParallel(a, a, new float[4], new float[4], args, 0));
    }
}
