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
public sealed class BenchAdamCommand : ICliCommand
{
    private const string Usage = "usage: dss bench adam [--params 10M,100M] [--threads 1,2] [--steps N] [--warmup W]";

    /// <summary>Bytes an fp32 Adam step reads and writes per parameter: reads p, g, m, v; writes p, m, v.</summary>
    public const int BytesPerParameter = 28;

    /// <inheritdoc/>
    public string Name => "bench adam";

    /// <inheritdoc/>
    public string Summary => "[--params 10M,100M] [--threads 1,2] [--steps N] (CPU Adam vs TorchSharp AdamW)";

    /// <inheritdoc/>
    public int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs with explicit writers (for tests).</summary>
    public int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length > 0 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }
        long[] sizes = { 10_000_000, 100_000_000 };
        int[] threads = { 1, 2 };
        int steps = 10, warmup = 2;
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            var value = i + 1 < args.Length ? args[i + 1] : null;
            string? error = a switch
            {
                "--params" => ParseList(value, ParseSize, out sizes) ? null
                    : $"--params needs a comma-separated list of sizes from 1 to {int.MaxValue / 4} such as 10M,100M or 250K, got '{value ?? "(nothing)"}'",
                "--threads" => ParseList(value, s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var t) && t >= 1 && t <= 1024 ? t : null, out threads) ? null
                    : $"--threads needs a comma-separated list of positive integers such as 1,2, got '{value ?? "(nothing)"}'",
                "--steps" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out steps) && steps >= 1 ? null
                    : $"--steps needs a positive integer, got '{value ?? "(nothing)"}'",
                "--warmup" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out warmup) ? null
                    : $"--warmup needs an integer >= 0, got '{value ?? "(nothing)"}'",
                _ => $"unknown option '{a}'",
            };
            if (error != null)
            {
                stderr.WriteLine($"dss bench adam: {error}. {Usage}");
                return 2;
            }
            i++;
        }

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

    private static bool ParseList<T>(string? text, Func<string, T?> parse, out T[] values) where T : struct
    {
        values = Array.Empty<T>();
        if (string.IsNullOrEmpty(text)) return false;
        var parsed = text.Split(',').Select(s => parse(s.Trim())).ToArray();
        if (parsed.Any(v => v is null)) return false;
        values = parsed.Select(v => v!.Value).ToArray();
        return true;
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
