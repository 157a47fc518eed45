using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `comm-matrix WORLD_BACKEND [SIZES] [GROUPS] [mismatch]`: initialises the world with WORLD_BACKEND (shm, tcp, mpi,
/// hierarchical or auto), then for each GROUPS entry "backend:k" (default: the world) builds a group of the last k
/// ranks with that backend and runs every collective × dtype × size on it, checking each result against values
/// computed locally from every rank's deterministic input. With "mismatch", ranks 0 and 1 of a fresh group per
/// backend call different collectives and print "MISMATCH-CAUGHT backend: message". With a hierarchical world, also
/// compares the world's all-reduce bit for bit with a flat tcp group. Prints "OK checks backend=B", exit 0 when all passed.
/// </summary>
public sealed class CommMatrixScenario : IScenario
{
    public string Name => "comm-matrix";

    private static readonly ScalarType[] DTypes =
        [ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Float64, ScalarType.Int32, ScalarType.Int64];

    private int _checks;
    private readonly List<string> _failures = new();

    public int Run(string[] args)
    {
        torch.set_num_threads(1);
        string? backend = args.Length > 0 && args[0] != "auto" ? args[0] : null;
        long[] sizes = args.Length > 1 ? args[1].Split(',').Select(long.Parse).ToArray() : [0, 1, 7, 13, 70_001];
        var world = Dist.Initialize(backend, TimeSpan.FromSeconds(60));
        int n = world.Size;
        var groups = args.Length > 2 && args[2] != "-" ? args[2].Split(',').Select(g => (g.Split(':')[0], int.Parse(g.Split(':')[1]))).ToArray()
            : [(world.Backend, n)];
        foreach (var (b, k) in groups)
        {
            var ranks = Enumerable.Range(n - k, k).ToArray();
            bool isWorld = k == n && b == world.Backend;
            var g = isWorld ? world : Dist.NewGroup(ranks, b);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            if (g.IsMember)
                foreach (var dt in DTypes)
                    foreach (var size in sizes)
                    {
                        using var scope = NewDisposeScope();
                        RunAll(g, dt, size, g.Size, g.Rank);
                    }
            if (!isWorld) g.Dispose();
            if (Environment.GetEnvironmentVariable("DSS_TEST_TIMING") == "1") Console.Error.WriteLine($"TIMING {b}:{k} {sw.ElapsedMilliseconds} ms");
        }
        using (NewDisposeScope()) Extras(world, n, world.Rank);
        if (world.Backend == "hierarchical") using (NewDisposeScope()) CompareWithFlatTcp(world);
        if (args.Contains("mismatch") && n >= 2) Mismatch(world, groups.Select(g => g.Item1).Distinct());
        world.Barrier();
        Console.WriteLine(_failures.Count == 0 ? $"OK {_checks} backend={world.Backend}" : string.Join("\n", _failures.Take(20)));
        Dist.Destroy();
        return _failures.Count == 0 ? 0 : 1;
    }

    private void Mismatch(ProcessGroup world, IEnumerable<string> backends)
    {
        foreach (var b in backends)
        {
            using var g = Dist.NewGroup([0, 1], b);
            if (!g.IsMember) continue;
            using var t = ones(16);
            try
            {
                if (g.Rank == 0) g.AllReduce(t); else g.Broadcast(t, 0);
                _failures.Add($"FAIL rank {world.Rank}: mismatched collectives on {b} raised nothing");
            }
            catch (DistributedException e) { Console.WriteLine($"MISMATCH-CAUGHT {b}: {e.Message}"); }
        }
    }

    /// <summary>The hierarchical all-reduce gives exactly the flat tcp result on integer-valued data, and the same bits twice on random data.</summary>
    private void CompareWithFlatTcp(ProcessGroup world)
    {
        using var flat = Dist.NewGroup(Enumerable.Range(0, world.Size).ToArray(), "tcp");
        foreach (var dt in DTypes)
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Max })
            {
                var a = Input(world.Rank, 70_001, dt, salt: 3);
                var b = a.clone();
                world.AllReduce(a, op);
                flat.AllReduce(b, op);
                Check(a, b, $"hierarchical = flat tcp {dt} {op}");
            }
        var gen = new Generator((ulong)(100 + world.Rank));
        var r1 = randn(50_000, generator: gen);
        var r2 = r1.clone();
        world.AllReduce(r1);
        world.AllReduce(r2);
        _checks++;
        if (!r1.eq(r2).all().item<bool>()) _failures.Add($"FAIL rank {world.Rank}: hierarchical all_reduce is not deterministic");
    }

    /// <summary>Rank r's input: small integers, exact in every dtype and in sums of up to 4 ranks.</summary>
    private static Tensor Input(int rank, long count, ScalarType dt, long salt = 0)
    {
        using var i = arange(count, ScalarType.Int64);
        using var v = (i * 7 + rank * 3 + salt) % 11 - 5;
        return v.to(dt);
    }

    private void Check(Tensor got, Tensor want, string what, bool approx = false)
    {
        _checks++;
        using var g = got.to(ScalarType.Float64).flatten();
        using var w = want.to(ScalarType.Float64).flatten();
        bool ok = g.numel() == w.numel() && (g.numel() == 0 || (approx ? g.allclose(w, rtol: 1e-2, atol: 1e-2) : g.eq(w).all().item<bool>()));
        if (!ok) _failures.Add($"FAIL rank {Dist.Rank} {what}: got {Show(g)} want {Show(w)}");
    }

    private static string Show(Tensor t) => t.numel() == 0 ? "[]" : string.Join(",", t.narrow(0, 0, Math.Min(8, t.numel())).data<double>().ToArray()) + (t.numel() > 8 ? "..." : "");

    private static Tensor Stack(int n, long count, ScalarType dt, long salt = 0) =>
        stack(Enumerable.Range(0, n).Select(r => Input(r, count, dt, salt).to(ScalarType.Float64)).ToArray());

    private void RunAll(ProcessGroup g, ScalarType dt, long size, int n, int me)
    {
        string tag = $"{dt} n={size} world={n}";
        bool floating = dt is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64;
        var all = Stack(n, size, dt);
        foreach (var op in floating ? new[] { ReduceOp.Sum, ReduceOp.Avg, ReduceOp.Max, ReduceOp.Min } : [ReduceOp.Sum, ReduceOp.Max, ReduceOp.Min])
        {
            var t = Input(me, size, dt);
            g.AllReduce(t, op);
            var want = op switch
            {
                ReduceOp.Sum => all.sum(dim: 0),
                ReduceOp.Avg => all.sum(dim: 0) / n,
                ReduceOp.Max => all.amax([0]),
                _ => all.amin([0]),
            };
            Check(t, want, $"all_reduce {op} {tag}", approx: op == ReduceOp.Avg);
        }
        // reduce_scatter (equal): input n×size
        {
            var input = Input(me, n * size, dt);
            var output = zeros(size, dt);
            g.ReduceScatter(output, input);
            Check(output, Stack(n, n * size, dt).sum(dim: 0).narrow(0, me * size, size), $"reduce_scatter {tag}");
        }
        // reduce_scatter (uneven): counts size+r
        {
            var counts = Enumerable.Range(0, n).Select(r => size + r).ToArray();
            long total = counts.Sum(), off = counts.Take(me).Sum();
            var input = Input(me, total, dt);
            var output = zeros(counts[me], dt);
            g.ReduceScatter(output, input, counts, ReduceOp.Max);
            Check(output, Stack(n, total, dt).amax([0]).narrow(0, off, counts[me]), $"reduce_scatter uneven max {tag}");
        }
        // all_gather flat, list, uneven
        {
            var input = Input(me, size, dt);
            var output = zeros(n * size, dt);
            g.AllGather(output, input);
            Check(output, all.flatten(), $"all_gather {tag}");
            var list = Enumerable.Range(0, n).Select(_ => zeros(size, dt)).ToList();
            g.AllGather(list, input);
            for (int r = 0; r < n; r++) Check(list[r], all[r], $"all_gather list[{r}] {tag}");
            var counts = Enumerable.Range(0, n).Select(r => size + 2 * r).ToArray();
            var mine = Input(me, counts[me], dt);
            var flat = zeros(counts.Sum(), dt);
            g.AllGather(flat, mine, counts);
            var want = cat(Enumerable.Range(0, n).Select(r => Input(r, counts[r], dt)).ToArray());
            Check(flat, want, $"all_gather uneven {tag}");
        }
        // broadcast from the last rank, reduce to the last rank
        {
            int src = g.GetGlobalRank(n - 1);
            var t = Input(me, size, dt);
            long before = Dist.Logger.BytesSentByOp.GetValueOrDefault("broadcast");
            g.Broadcast(t, src);
            Check(t, all[n - 1], $"broadcast {tag}");
            // The source sends the tensor to each other member (the kernel's link counters see n − 1 copies leave).
            long sent = Dist.Logger.BytesSentByOp.GetValueOrDefault("broadcast") - before, expected = me == n - 1 ? t.NumberOfElements * t.ElementSize * (n - 1) : 0;
            if (sent != expected) _failures.Add($"FAIL rank {Dist.Rank} broadcast bytes {tag}: counted {sent}, sent {expected}");
            var r = Input(me, size, dt);
            g.Reduce(r, src, ReduceOp.Sum);
            Check(r, me == n - 1 ? all.sum(dim: 0) : all[me], $"reduce {tag}");
        }
        // all_to_all: block j of rank r goes to rank j
        {
            var input = Input(me, n * size, dt);
            var output = zeros(n * size, dt);
            g.AllToAll(output, input);
            var want = cat(Enumerable.Range(0, n).Select(r => Input(r, n * size, dt).narrow(0, me * size, size)).ToArray());
            Check(output, want, $"all_to_all {tag}");
        }
        // send/recv around the ring (async so every rank can send and receive)
        if (n > 1)
        {
            int next = g.GetGlobalRank((me + 1) % n), prev = g.GetGlobalRank((me - 1 + n) % n);
            var send = Input(me, size, dt, salt: 1);
            var recv = zeros(size, dt);
            var ws = g.SendAsync(send, next, tag: 5);
            var wr = g.RecvAsync(recv, prev, tag: 5);
            ws.Wait(); wr.Wait();
            Check(recv, Input((me - 1 + n) % n, size, dt, salt: 1), $"send/recv {tag}");
        }
    }

    private void Extras(ProcessGroup g, int n, int me)
    {
        // overlapping async all-reduces complete in order with correct results
        var works = new List<(Work, Tensor, long)>();
        for (int k = 0; k < 4; k++)
        {
            var t = Input(me, 1000 + k, ScalarType.Float32, salt: k);
            works.Add((g.AllReduceAsync(t), t, k));
        }
        foreach (var (w, t, k) in works)
        {
            w.Wait();
            Check(t, Stack(n, 1000 + k, ScalarType.Float32, k).sum(dim: 0), $"async all_reduce #{k}");
        }
        // a non-contiguous tensor is staged and written back
        var m = Input(me, 6 * 5, ScalarType.Float32).view(6, 5).t();
        g.AllReduce(m);
        Check(m.contiguous(), Stack(n, 30, ScalarType.Float32).sum(dim: 0).view(6, 5).t().contiguous(), "all_reduce non-contiguous");
        // sub-groups: even ranks, then pairs
        var evens = Enumerable.Range(0, n).Where(r => r % 2 == 0).ToArray();
        using var eg = Dist.NewGroup(evens);
        if (eg.IsMember)
        {
            var t = Input(me, 33, ScalarType.Float32);
            eg.AllReduce(t);
            Check(t, stack(evens.Select(r => Input(r, 33, ScalarType.Float32)).ToArray()).sum(dim: 0), "sub-group all_reduce");
        }
        g.Barrier();
        var bw = g.BroadcastAsync(Input(me, 5, ScalarType.Int64), g.GetGlobalRank(0));
        bw.Wait();
        _checks++;
    }
}
