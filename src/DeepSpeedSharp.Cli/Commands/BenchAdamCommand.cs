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
/// next to the machine's memcpy bandwidth. Reports medians; GB/s counts 28 bytes read and written per parameter.
/// Exit code 0 on success, 2 on usage errors.
/// </summary>
public sealed class BenchAdamCommand : ICliCommand
{
    private const string Usage = "usage: dss bench adam [--params 10M,100M] [--threads 1,2] [--steps N] [--warmup W]";

    /// <summary>Bytes an fp32 Adam step reads and writes per parameter: reads p, g, m, v; writes p, m, v.</summary>
    public const int BytesPerParameter = 28;

    private const long MemcpyBytes = 256L << 20;

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
        var bandwidth = MemoryBandwidth(threads, Math.Max(5, steps));
        foreach (var t in threads)
            stdout.WriteLine(F($"memcpy {MemcpyBytes >> 20} MiB, {t} thread(s): {bandwidth[t].Memcpy:F1} GB/s (bytes read + written); ") +
                             F($"in-place read-modify-write: {bandwidth[t].InPlace:F1} GB/s"));
        stdout.WriteLine();
        stdout.WriteLine($"{"params",10} {"threads",7} {"ours ms",9} {"ours GB/s",9} {"torch ms",9} {"torch GB/s",10} {"speedup",7} {"% memcpy",8} {"% in-place",10}");
        foreach (var n in sizes)
            foreach (var t in threads)
            {
                var (memcpy, inPlace) = bandwidth[t];
                var (ours, torchMs) = TimeSteps(n, t, steps, warmup);
                double oursGbs = n * (double)BytesPerParameter / (ours * 1e6), torchGbs = n * (double)BytesPerParameter / (torchMs * 1e6);
                stdout.WriteLine(F($"{FormatSize(n),10} {t,7} {ours,9:F2} {oursGbs,9:F1} {torchMs,9:F2} {torchGbs,10:F1} {torchMs / ours,6:F1}x {100 * oursGbs / memcpy,7:F0}% {100 * oursGbs / inPlace,9:F0}%"));
            }
        stdout.WriteLine($"load average at the end: {LoadAverage()}");
        return 0;
    }

    /// <summary>Median step times (ms) of our kernel and of TorchSharp's AdamW on the same fp32 tensors.</summary>
    private static (double Ours, double Torch) TimeSteps(long n, int threads, int steps, int warmup)
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

        // torch's thread count is process-wide: touch it only when it differs, and restore it.
        var previousThreads = get_num_threads();
        if (previousThreads != threads) set_num_threads(threads);
        try
        {
            using var p = new Parameter(param, requires_grad: true);
            p.grad = grad;
            using var adamW = new AdamW(new[] { p }, lr, beta1, beta2, eps, weightDecay);
            var torchMs = Time(steps, warmup, () => adamW.step());
            return (ours, torchMs);
        }
        finally
        {
            if (previousThreads != threads) set_num_threads(previousThreads);
        }
    }

    private static Span<float> Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.bytes);

    /// <summary>Per thread count, in GB/s of bytes read + written, medians of <paramref name="repeats"/>: memcpy of
    /// 256 MiB between two pre-touched native buffers, and an in-place read-modify-write pass over one such buffer
    /// (the access pattern of an optimizer step, which writes back the lines it read and so skips the write-allocate
    /// reads a copy to another buffer pays). Both split over the threads.</summary>
    private static unsafe Dictionary<int, (double Memcpy, double InPlace)> MemoryBandwidth(int[] threadCounts, int repeats)
    {
        var result = new Dictionary<int, (double, double)>();
        var src = (byte*)NativeMemory.AlignedAlloc((nuint)MemcpyBytes, 64);
        var dst = (byte*)NativeMemory.AlignedAlloc((nuint)MemcpyBytes, 64);
        try
        {
            new Span<byte>(src, (int)MemcpyBytes).Fill(1);
            new Span<byte>(dst, (int)MemcpyBytes).Clear();
            foreach (var threads in threadCounts.Distinct())
            {
                var part = MemcpyBytes / threads;
                var ms = Time(repeats, 1, () => Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, k =>
                {
                    var start = k * part;
                    var length = k == threads - 1 ? MemcpyBytes - start : part;
                    Buffer.MemoryCopy(src + start, dst + start, length, length);
                }));
                var inPlaceMs = Time(repeats, 1, () => Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, k =>
                {
                    var start = k * part;
                    var length = k == threads - 1 ? MemcpyBytes - start : part;
                    ScaleInPlace((float*)(dst + start), length / sizeof(float), 1f);
                }));
                result[threads] = (2.0 * MemcpyBytes / (ms * 1e6), 2.0 * MemcpyBytes / (inPlaceMs * 1e6));
            }
            return result;
        }
        finally
        {
            NativeMemory.AlignedFree(src);
            NativeMemory.AlignedFree(dst);
        }
    }

    /// <summary>x[i] *= factor over <paramref name="n"/> floats, 8 at a time (plus a scalar tail).</summary>
    private static unsafe void ScaleInPlace(float* x, long n, float factor)
    {
        var f = Vector256.Create(factor);
        long i = 0;
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(x + i) * f, x + i);
        for (; i < n; i++) x[i] *= factor;
    }

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
    public static long? ParseSize(string s)
    {
        if (s.Length == 0) return null;
        long scale = char.ToUpperInvariant(s[^1]) switch { 'K' => 1_000, 'M' => 1_000_000, 'G' => 1_000_000_000, _ => 1 };
        var digits = scale == 1 ? s : s[..^1];
        if (!decimal.TryParse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d)) return null;
        var n = d * scale;
        return n >= 1 && n <= int.MaxValue / 4 && n == decimal.Truncate(n) ? (long)n : null;
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
