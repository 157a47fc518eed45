using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using DeepSpeedSharp.Native;
using DeepSpeedSharp.Optim.CpuAdam;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss bench adam [--params 10M,100M] [--threads 1,2] [--steps N] [--warmup W]</c>: times one Adam step of
/// <see cref="CpuAdamKernel"/> and of TorchSharp's <c>optim.AdamW</c> on the same tensors for each size and thread count,
/// next to a pass with the step's own memory traffic over the same tensors (<see cref="AdamStreamBaseline"/>).
/// Reports medians; GB/s counts 28 bytes read and written per parameter.
/// Exit code 0 on success, 2 on usage errors.
/// </summary>
public sealed class BenchAdamCommand : CliCommand
{
    /// <summary>Bytes an fp32 Adam step reads and writes per parameter: reads p, g, m, v; writes p, m, v.</summary>
    public const int BytesPerParameter = 28;

    /// <inheritdoc/>
    public override string Name => "bench adam";

    /// <inheritdoc/>
    public override string Summary => "[--params 10M,100M] [--threads 1,2] [--steps N] (CPU Adam vs TorchSharp AdamW)";

    /// <inheritdoc/>
    public override Command CreateCommand()
    {
        var sizes = CliOptions.List("--params", "SIZES", "comma-separated parameter counts to time, with K, M or G",
            (string s, out long v) => (v = ParseSize(s) ?? 0) > 0, $"a comma-separated list of sizes from 1 to {int.MaxValue / 4} such as 10M,100M or 250K",
            [10_000_000, 100_000_000]);
        var threads = CliOptions.List("--threads", "COUNTS", "comma-separated thread counts to time each size with",
            (string s, out int t) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out t) && t >= 1 && t <= 1024,
            "a comma-separated list of positive integers such as 1,2", [1, 2]);
        var steps = CliOptions.Int("--steps", "timed steps per measurement (the median is reported)", 10);
        var warmup = CliOptions.Int("--warmup", "untimed steps before timing", 2, min: 0, valueName: "W");
        var command = new Command("adam", "Time one Adam step of DeepSpeedSharp's SIMD CPU Adam and of TorchSharp's AdamW on the same tensors, " +
                                        "for each size and thread count, next to a pass with the step's own memory traffic (medians; needs libtorch).")
        {
            sizes, threads, steps, warmup,
        };
        command.SetAction(r => Bench(r.GetValue(sizes)!, r.GetValue(threads)!, r.GetValue(steps), r.GetValue(warmup), r.InvocationConfiguration.Output));
        return command;
    }

    private static int Bench(long[] sizes, int[] threads, int steps, int warmup, TextWriter stdout)
    {
        TorchRuntime.EnsureLoaded();
        stdout.WriteLine($"CPU Adam benchmark: kernel path {CpuAdamKernel.BestPath}, {Environment.ProcessorCount} logical cores, " +
                         $"load average {LoadAverage()}; {warmup} warm-up + {steps} timed steps, medians; GB/s = {BytesPerParameter} B/param / step time");
        stdout.WriteLine("stream = one pass reading p, g, m, v and writing p, m, v over the same tensors (the step's traffic, a few FMAs per element)");
        stdout.WriteLine();
        stdout.WriteLine($"{"params",10} {"threads",7} {"ours ms",9} {"ours GB/s",9} {"torch ms",9} {"torch GB/s",10} {"speedup",7} {"stream GB/s",11} {"% stream",8}");
        foreach (var n in sizes)
            foreach (var t in threads)
            {
                var (ours, torchMs, streamMs) = TimeSteps(n, t, steps, warmup);
                double Gbs(double ms) => n * (double)BytesPerParameter / (ms * 1e6);
                stdout.WriteLine(F($"{FormatSize(n),10} {t,7} {ours,9:F2} {Gbs(ours),9:F1} {torchMs,9:F2} {Gbs(torchMs),10:F1} {torchMs / ours,6:F1}x {Gbs(streamMs),11:F1} {100 * streamMs / ours,7:F0}%"));
            }
        stdout.WriteLine($"load average at the end: {LoadAverage()}");
        return 0;
    }

    /// <summary>Median times (ms) of our kernel's step, of TorchSharp's AdamW step and of the stream pass on the same fp32 tensors.</summary>
    private static (double Ours, double Torch, double Stream) TimeSteps(long n, int threads, int steps, int warmup)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1234);
        using var param = randn(n, generator: gen);
        using var grad = randn(n, generator: gen).mul_(0.01);
        using var expAvg = zeros(n);
        using var expAvgSq = zeros(n);
        const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01;
        long step = 0;
        var ours = Time(steps, warmup, () =>
        {
            var args = new AdamStepArgs(lr, beta1, beta2, eps, weightDecay, ++step);
            CpuAdamKernel.StepParallel(Floats(param), Floats(grad), Floats(expAvg), Floats(expAvgSq), args, threads);
        });
        var stream = Time(steps, warmup, () => AdamStreamBaseline.Pass(param, grad, expAvg, expAvgSq, threads));

        // torch's thread count is process-wide: touch it only when it differs, and restore it.
        var previousThreads = get_num_threads();
        if (previousThreads != threads) set_num_threads(threads);
        try
        {
            using var p = new Parameter(param, requires_grad: true);
            p.grad = grad;
            using var adamW = new AdamW(new[] { p }, lr, beta1, beta2, eps, weightDecay);
            var torchMs = Time(steps, warmup, () => adamW.step());
            return (ours, torchMs, stream);
        }
        finally
        {
            if (previousThreads != threads) set_num_threads(previousThreads);
        }
    }

    private static Span<float> Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.bytes);

    /// <summary>Runs <paramref name="warmup"/> untimed then <paramref name="repeats"/> timed calls; the median in ms.</summary>
    private static double Time(int repeats, int warmup, Action action)
    {
        for (var i = 0; i < warmup; i++) action();
        var times = new double[repeats];
        for (var i = 0; i < repeats; i++)
        {
            var start = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
    }

    /// <summary>"10M" = 10,000,000; "250K" = 250,000; "1G" = 10^9; plain integers accepted. Null when invalid or too large
    /// for one tensor's span (2 GiB).</summary>
    public static long? ParseSize(string s) => ParseSize(s, int.MaxValue / 4);

    /// <summary>As <see cref="ParseSize(string)"/>, with sizes up to <paramref name="max"/>.</summary>
    public static long? ParseSize(string s, long max)
    {
        if (s.Length == 0) return null;
        long scale = char.ToUpperInvariant(s[^1]) switch { 'K' => 1_000, 'M' => 1_000_000, 'G' => 1_000_000_000, _ => 1 };
        var digits = scale == 1 ? s : s[..^1];
        if (!decimal.TryParse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d)) return null;
        var n = d * scale;
        return n >= 1 && n <= max && n == decimal.Truncate(n) ? (long)n : null;
    }

    private static string FormatSize(long n) =>
        n % 1_000_000 == 0 ? F($"{n / 1_000_000}M") : n % 1_000 == 0 ? F($"{n / 1_000}K") : F($"{n}");

    private static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
