using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DeepSpeedSharp.Optim.CpuAdam;

public static partial class CpuAdamKernel
{
    /// <summary>Runs one pass: the widest requested vector loop, then the scalar loop for the remainder.</summary>
    private static void Run(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamCoefficients c, Span<ushort> low, LowPrecisionKind kind, CpuAdamPath path)
    {
        var done = path switch
        {
            CpuAdamPath.Vector512 => Vector512Loop(param, grad, expAvg, expAvgSq, c, low, kind),
            CpuAdamPath.Vector256 => Vector256Loop(param, grad, expAvg, expAvgSq, c, low, kind),
            _ => 0,
        };
        ScalarLoop(param, grad, expAvg, expAvgSq, c, low, kind, done);
    }

    private static void ScalarLoop(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamCoefficients c, Span<ushort> low, LowPrecisionKind kind, int start)
    {
        for (var i = start; i < param.Length; i++)
        {
            float p = param[i], g = grad[i], m = expAvg[i], v = expAvgSq[i];
            if (c.UseL2) g = MathF.FusedMultiplyAdd(p, c.L2, g);
            if (c.Decoupled) p *= c.DecayFactor;
            m = MathF.FusedMultiplyAdd(g, c.OneMinusBeta1, m * c.Beta1);
            v = MathF.FusedMultiplyAdd(g * g, c.OneMinusBeta2, v * c.Beta2);
            var denom = MathF.Sqrt(v) / c.SqrtBiasCorrection2 + c.Eps;
            p = MathF.FusedMultiplyAdd(m / denom, c.NegStepSize, p);
            param[i] = p;
            expAvg[i] = m;
            expAvgSq[i] = v;
            if (kind == LowPrecisionKind.BFloat16) low[i] = LowPrecisionRounding.ToBFloat16(p);
            else if (kind == LowPrecisionKind.Float16) low[i] = LowPrecisionRounding.ToHalf(p);
        }
    }

    /// <summary>The 16-lane loop; returns how many leading elements it handled.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Vector512Loop(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamCoefficients c, Span<ushort> low, LowPrecisionKind kind)
    {
        var n = (nuint)param.Length & ~(nuint)15;
        ref var pr = ref MemoryMarshal.GetReference(param);
        ref var gr = ref MemoryMarshal.GetReference(grad);
        ref var mr = ref MemoryMarshal.GetReference(expAvg);
        ref var vr = ref MemoryMarshal.GetReference(expAvgSq);
        ref var lr = ref MemoryMarshal.GetReference(low);
        var beta1 = Vector512.Create(c.Beta1);
        var oneMinusBeta1 = Vector512.Create(c.OneMinusBeta1);
        var beta2 = Vector512.Create(c.Beta2);
        var oneMinusBeta2 = Vector512.Create(c.OneMinusBeta2);
        var sqrtBc2 = Vector512.Create(c.SqrtBiasCorrection2);
        var eps = Vector512.Create(c.Eps);
        var negStep = Vector512.Create(c.NegStepSize);
        var decay = Vector512.Create(c.DecayFactor);
        var l2 = Vector512.Create(c.L2);
        bool useL2 = c.UseL2, decoupled = c.Decoupled;
        for (nuint i = 0; i < n; i += 16)
        {
            var p = Vector512.LoadUnsafe(ref pr, i);
            var g = Vector512.LoadUnsafe(ref gr, i);
            var m = Vector512.LoadUnsafe(ref mr, i);
            var v = Vector512.LoadUnsafe(ref vr, i);
            if (useL2) g = Vector512.FusedMultiplyAdd(p, l2, g);
            if (decoupled) p *= decay;
            m = Vector512.FusedMultiplyAdd(g, oneMinusBeta1, m * beta1);
            v = Vector512.FusedMultiplyAdd(g * g, oneMinusBeta2, v * beta2);
            var denom = Vector512.Sqrt(v) / sqrtBc2 + eps;
            p = Vector512.FusedMultiplyAdd(m / denom, negStep, p);
            p.StoreUnsafe(ref pr, i);
            m.StoreUnsafe(ref mr, i);
            v.StoreUnsafe(ref vr, i);
            if (kind == LowPrecisionKind.BFloat16) LowPrecisionRounding.ToBFloat16(p).StoreUnsafe(ref lr, i);
            else if (kind == LowPrecisionKind.Float16) LowPrecisionRounding.ToHalf(p).StoreUnsafe(ref lr, i);
        }
        return (int)n;
    }

    /// <summary>The 8-lane loop; returns how many leading elements it handled.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Vector256Loop(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        in AdamCoefficients c, Span<ushort> low, LowPrecisionKind kind)
    {
        var n = (nuint)param.Length & ~(nuint)7;
        ref var pr = ref MemoryMarshal.GetReference(param);
        ref var gr = ref MemoryMarshal.GetReference(grad);
        ref var mr = ref MemoryMarshal.GetReference(expAvg);
        ref var vr = ref MemoryMarshal.GetReference(expAvgSq);
        ref var lr = ref MemoryMarshal.GetReference(low);
        var beta1 = Vector256.Create(c.Beta1);
        var oneMinusBeta1 = Vector256.Create(c.OneMinusBeta1);
        var beta2 = Vector256.Create(c.Beta2);
        var oneMinusBeta2 = Vector256.Create(c.OneMinusBeta2);
        var sqrtBc2 = Vector256.Create(c.SqrtBiasCorrection2);
        var eps = Vector256.Create(c.Eps);
        var negStep = Vector256.Create(c.NegStepSize);
        var decay = Vector256.Create(c.DecayFactor);
        var l2 = Vector256.Create(c.L2);
        bool useL2 = c.UseL2, decoupled = c.Decoupled;
        for (nuint i = 0; i < n; i += 8)
        {
            var p = Vector256.LoadUnsafe(ref pr, i);
            var g = Vector256.LoadUnsafe(ref gr, i);
            var m = Vector256.LoadUnsafe(ref mr, i);
            var v = Vector256.LoadUnsafe(ref vr, i);
            if (useL2) g = Vector256.FusedMultiplyAdd(p, l2, g);
            if (decoupled) p *= decay;
            m = Vector256.FusedMultiplyAdd(g, oneMinusBeta1, m * beta1);
            v = Vector256.FusedMultiplyAdd(g * g, oneMinusBeta2, v * beta2);
            var denom = Vector256.Sqrt(v) / sqrtBc2 + eps;
            p = Vector256.FusedMultiplyAdd(m / denom, negStep, p);
            p.StoreUnsafe(ref pr, i);
            m.StoreUnsafe(ref mr, i);
            v.StoreUnsafe(ref vr, i);
            if (kind == LowPrecisionKind.BFloat16) LowPrecisionRounding.ToBFloat16(p).StoreUnsafe(ref lr, i);
            else if (kind == LowPrecisionKind.Float16) LowPrecisionRounding.ToHalf(p).StoreUnsafe(ref lr, i);
        }
        return (int)n;
    }
}
