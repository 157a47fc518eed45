using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss bench comm`: times a collective on every rank of the job it runs in (start it under N ranks with the
/// launcher, mpirun (`--backend mpi`) or by setting RANK/WORLD_SIZE/MASTER_*), printing size, time, algbw and busbw with the
/// nccl-tests conventions, plus this machine's single-core memcpy bandwidth for reference.
/// </summary>
public sealed class BenchCommCommand : ICliCommand
{
    public string Name => "bench comm";

    public string Summary => "--backend shm|tcp|mpi --op all_reduce|reduce_scatter|all_gather|broadcast --sizes 1M,16M,64M";

    public int Run(string[] args)
    {
        string? backend = null, op = "all_reduce", dtypeName = "float32";
        var sizes = new List<long> { 1 << 20, 16 << 20, 64 << 20 };
        int iters = 10, warmup = 3;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--backend": backend = Next(); break;
                case "--op": op = Next(); break;
                case "--sizes": sizes = Next().Split(',').Select(ParseSize).ToList(); break;
                case "--iters": iters = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--dtype": dtypeName = Next(); break;
                default: throw new ArgumentException($"unknown option '{args[i]}'.");
            }
        }
        var dtype = dtypeName switch
        {
            "float32" => ScalarType.Float32, "bfloat16" => ScalarType.BFloat16, "float16" => ScalarType.Float16, "float64" => ScalarType.Float64,
            _ => throw new ArgumentException($"--dtype {dtypeName}: use float32, bfloat16, float16 or float64."),
        };
        if (op is not ("all_reduce" or "reduce_scatter" or "all_gather" or "broadcast" or "all_to_all"))
            throw new ArgumentException($"--op {op}: use all_reduce, reduce_scatter, all_gather, broadcast or all_to_all.");
        var world = Dist.Initialize(backend);
        int n = world.Size, es = dtype == ScalarType.Float32 ? 4 : dtype == ScalarType.Float64 ? 8 : 2;
        if (world.Rank == 0)
        {
            Console.WriteLine($"# dss bench comm: backend={world.Backend} op={op} np={n} dtype={dtypeName} iters={iters} memcpy={MemcpyGBps():F2} GB/s (1 core, bytes copied per second)");
            Console.WriteLine($"{"size",12}{"count",12}{"time(us)",12}{"algbw(GB/s)",13}{"busbw(GB/s)",13}");
        }
        foreach (var bytes in sizes)
        {
            long count = Math.Max(n, bytes / es / n * n);
            using var scope = NewDisposeScope();
            var t = ones(count, dtype);
            var part = zeros(count / n, dtype);
            Action run = op switch
            {
                "all_reduce" => () => world.AllReduce(t),
                "reduce_scatter" => () => world.ReduceScatter(part, t),
                "all_gather" => () => world.AllGather(t, part),
                "all_to_all" => () => world.AllToAll(part.numel() * n == t.numel() ? t.clone() : t, t),
                _ => () => world.Broadcast(t, 0),
            };
            for (int w = 0; w < warmup; w++) run();
            world.Barrier();
            var sw = Stopwatch.StartNew();
            for (int k = 0; k < iters; k++) run();
            world.Barrier();
            double sec = sw.Elapsed.TotalSeconds / iters;
            double algbw = count * es / sec / 1e9;
            double busbw = algbw * CommsLogger.BusBandwidthFactor(op, n);
            if (world.Rank == 0)
                Console.WriteLine($"{CommsLogger.FormatBytes(count * es),12}{count,12}{sec * 1e6,12:F1}{algbw,13:F2}{busbw,13:F2}");
        }
        Dist.Destroy();
        return 0;
    }

    private static long ParseSize(string s)
    {
        s = s.Trim().ToUpperInvariant();
        long mult = s.EndsWith('K') ? 1 << 10 : s.EndsWith('M') ? 1 << 20 : s.EndsWith('G') ? 1 << 30 : 1;
        var num = mult == 1 ? s : s[..^1];
        return long.Parse(num, CultureInfo.InvariantCulture) * mult;
    }

    /// <summary>Single-core memcpy of 64 MB between pre-touched buffers, median of 5.</summary>
    private static unsafe double MemcpyGBps()
    {
        const int bytes = 64 << 20;
        var a = GC.AllocateUninitializedArray<byte>(bytes, pinned: true);
        var b = GC.AllocateUninitializedArray<byte>(bytes, pinned: true);
        a.AsSpan().Fill(1); b.AsSpan().Clear();
        var times = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            a.AsSpan().CopyTo(b);
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return bytes / times[2] / 1e9;
    }
}
