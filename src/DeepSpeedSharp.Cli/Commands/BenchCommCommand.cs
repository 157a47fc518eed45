using System.CommandLine;
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
public sealed class BenchCommCommand : CliCommand
{
    private static readonly string[] Ops = ["all_reduce", "reduce_scatter", "all_gather", "broadcast", "all_to_all"];

    /// <inheritdoc/>
    public override string Name => "bench comm";

    /// <inheritdoc/>
    public override string Summary => "--backend shm|tcp|mpi --op all_reduce|reduce_scatter|all_gather|broadcast --sizes 1M,16M,64M";

    /// <inheritdoc/>
    public override Command CreateCommand()
    {
        var backend = CliOptions.Text("--backend", "NAME", "communication backend: shm, tcp, mpi or hierarchical (default: Dist.Initialize's choice)");
        var op = CliOptions.Choice("--op", "the collective to time", "all_reduce", Ops);
        var sizes = CliOptions.List("--sizes", "SIZES", "comma-separated message sizes in bytes, with K, M or G (powers of 2)",
            (string s, out long v) => (v = ParseSize(s)) > 0, "a comma-separated list of sizes such as 1M,16M,64M", [1 << 20, 16 << 20, 64 << 20]);
        var iters = CliOptions.Int("--iters", "timed iterations per size", 10);
        var warmup = CliOptions.Int("--warmup", "untimed iterations per size", 3, min: 0);
        var dtype = CliOptions.Choice("--dtype", "element type of the tensors", "float32", "float32", "bfloat16", "float16", "float64");
        var command = new Command("comm", "Time a collective on every rank of the job it runs in (start it under N ranks with dss launch, " +
                                        "mpirun with --backend mpi, or RANK/WORLD_SIZE/MASTER_*); prints size, time, algbw and busbw as nccl-tests do.")
        {
            backend, op, sizes, iters, warmup, dtype,
        };
        command.SetAction(r => Bench(r.GetValue(backend), r.GetValue(op)!, r.GetValue(sizes)!, r.GetValue(iters), r.GetValue(warmup), r.GetValue(dtype)!));
        return command;
    }

    private static int Bench(string? backend, string op, long[] sizes, int iters, int warmup, string dtypeName)
    {
        var dtype = dtypeName switch
        {
            "float32" => ScalarType.Float32, "bfloat16" => ScalarType.BFloat16, "float16" => ScalarType.Float16, _ => ScalarType.Float64,
        };
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

    /// <summary>"1M" = 2^20 bytes, "4K", "1G", or a plain integer; 0 when invalid.</summary>
    private static long ParseSize(string s)
    {
        s = s.Trim().ToUpperInvariant();
        long mult = s.EndsWith('K') ? 1 << 10 : s.EndsWith('M') ? 1 << 20 : s.EndsWith('G') ? 1 << 30 : 1;
        var num = mult == 1 ? s : s[..^1];
        return long.TryParse(num, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= long.MaxValue / mult ? n * mult : 0;
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
