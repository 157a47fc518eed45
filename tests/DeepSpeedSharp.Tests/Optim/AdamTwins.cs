using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Optim;

/// <summary>Two identical parameter sets driven by the same gradients, for comparing two Adam optimizers side by side
/// (FusedAdam and DeepSpeedCpuAdam tests).</summary>
internal static class AdamTwins
{
    /// <summary>The parameter shapes used unless a test gives its own.</summary>
    public static readonly long[][] SmallShapes = { new long[] { 7, 5 }, new long[] { 13 }, new long[] { 2, 3, 4 } };

    /// <summary>Two identical parameter sets of the given shapes (default <see cref="SmallShapes"/>), random from <paramref name="seed"/>.</summary>
    public static (Parameter[] A, Parameter[] B) TwinParameters(ulong seed, long[][]? shapes = null, ScalarType dtype = ScalarType.Float32)
    {
        var gen = new Generator(seed);
        var a = (shapes ?? SmallShapes).Select(s => new Parameter(randn(s, dtype, generator: gen))).ToArray();
        var b = a.Select(p => new Parameter(p.detach().clone())).ToArray();
        return (a, b);
    }

    /// <summary>Gives both parameter sets the same fresh random gradient.</summary>
    public static void SetSameGrads(Parameter[] a, Parameter[] b, Generator gen)
    {
        for (var i = 0; i < a.Length; i++)
        {
            var g = randn(a[i].shape, a[i].dtype, generator: gen);
            a[i].grad = g;
            b[i].grad = g.clone();
        }
    }

    /// <summary>The largest over the parameters of max|a − b| / max|b|.</summary>
    public static double MaxRelativeDifference(Parameter[] a, Parameter[] b)
    {
        double worst = 0;
        for (var i = 0; i < a.Length; i++)
        {
            using var diff = (a[i] - b[i]).abs().max();
            using var scale = b[i].abs().max();
            worst = Math.Max(worst, diff.to(ScalarType.Float64).item<double>() / scale.to(ScalarType.Float64).item<double>());
        }
        return worst;
    }

    /// <summary>Runs <paramref name="steps"/> steps of both optimizers on the same random gradients.</summary>
    public static void RunSideBySide(optim.Optimizer ours, optim.Optimizer reference, Parameter[] a, Parameter[] b, ulong seed,
        int steps = 100)
    {
        var gen = new Generator(seed);
        for (var s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            SetSameGrads(a, b, gen);
            ours.step();
            reference.step();
        }
    }
}
