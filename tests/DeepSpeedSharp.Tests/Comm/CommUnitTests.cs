using System.Net;
using System.Net.Sockets;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Comm.Core;
using DeepSpeedSharp.Comm.Store;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>In-process checks of the pieces under the backends: reductions, environment parsing, store, logger.</summary>
public unsafe class CommUnitTests
{
    [Fact]
    public void Bf16ReductionAccumulatesInFloat32AndRoundsOnceToNearestEven()
    {
        // 1 + 2^-8 + 2^-8: bf16-by-bf16 addition would round 1+2^-8 back to 1 twice; fp32 accumulation gives 1+2^-7.
        using var a = tensor(new float[] { 1f }).to(ScalarType.BFloat16);
        using var b = tensor(new float[] { 1f / 256 }).to(ScalarType.BFloat16);
        using var c = tensor(new float[] { 1f / 256 }).to(ScalarType.BFloat16);
        using var dst = zeros(1, ScalarType.BFloat16);
        nint* src = stackalloc nint[3];
        src[0] = (nint)StagingPool.PointerOf(a); src[1] = (nint)StagingPool.PointerOf(b); src[2] = (nint)StagingPool.PointerOf(c);
        Reducer.Reduce(ScalarType.BFloat16, ReduceOp.Sum, src, 3, StagingPool.PointerOf(dst), 1);
        Assert.Equal(1f + 1f / 128, dst.to(ScalarType.Float32).item<float>());
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int64)]
    public void VectorisedReductionMatchesTorchForEveryOpAndTailLength(ScalarType dt)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(7);
        var xs = Enumerable.Range(0, 3).Select(_ => randint(-50, 50, [1003], generator: gen).to(dt)).ToArray();
        nint* src = stackalloc nint[3];
        for (int k = 0; k < 3; k++) src[k] = (nint)StagingPool.PointerOf(xs[k]);
        var all = stack(xs.Select(x => x.to(ScalarType.Float64)).ToArray());
        foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Max, ReduceOp.Min })
        {
            var dst = zeros(1003, dt);
            Reducer.Reduce(dt, op, src, 3, StagingPool.PointerOf(dst), 1003);
            var want = op == ReduceOp.Sum ? all.sum(dim: 0) : op == ReduceOp.Max ? all.amax([0]) : all.amin([0]);
            Assert.True(dst.to(ScalarType.Float64).eq(want).all().item<bool>(), $"{dt} {op}");
        }
    }

    [Fact]
    public void AvgOnIntegersIsRejectedWithAClearMessage()
    {
        using var g = new SingleProcessGroup(0, TimeSpan.FromSeconds(5), new CommsLogger());
        using var t = ones(4, ScalarType.Int32);
        var e = Assert.Throws<ArgumentException>(() => g.AllReduce(t, ReduceOp.Avg));
        Assert.Contains("floating-point", e.Message);
    }

    [Fact]
    public void LaunchEnvironmentReadsTorchrunMpiAndPmiVariables()
    {
        var torchrun = LaunchEnvironment.From(new Dictionary<string, string?> { ["RANK"] = "3", ["WORLD_SIZE"] = "4", ["LOCAL_RANK"] = "1", ["LOCAL_SIZE"] = "2", ["MASTER_PORT"] = "1234", ["DSS_JOB_TOKEN"] = "0aff", ["DEEPSPEED_TIMEOUT"] = "2" }.GetValueOrDefault);
        Assert.Equal((3, 4, 1, 2, 1234, false), (torchrun.Rank, torchrun.WorldSize, torchrun.LocalRank, torchrun.LocalWorldSize, torchrun.MasterPort, torchrun.StartedByMpi));
        Assert.Equal(new byte[] { 0x0a, 0xff }, torchrun.JobToken);
        Assert.Equal(TimeSpan.FromMinutes(2), torchrun.TimeoutOverride);
        var ompi = LaunchEnvironment.From(new Dictionary<string, string?> { ["OMPI_COMM_WORLD_RANK"] = "1", ["OMPI_COMM_WORLD_SIZE"] = "2", ["OMPI_COMM_WORLD_LOCAL_RANK"] = "1", ["OMPI_COMM_WORLD_LOCAL_SIZE"] = "2" }.GetValueOrDefault);
        Assert.Equal((1, 2, 1, 2, true), (ompi.Rank, ompi.WorldSize, ompi.LocalRank, ompi.LocalWorldSize, ompi.StartedByMpi));
        var pmi = LaunchEnvironment.From(new Dictionary<string, string?> { ["PMI_RANK"] = "2", ["PMI_SIZE"] = "3" }.GetValueOrDefault);
        Assert.Equal((2, 3, true), (pmi.Rank, pmi.WorldSize, pmi.StartedByMpi));
        var bad = Assert.Throws<ArgumentException>(() => LaunchEnvironment.From(new Dictionary<string, string?> { ["RANK"] = "4", ["WORLD_SIZE"] = "4" }.GetValueOrDefault));
        Assert.Contains("RANK=4", bad.Message);
    }

    [Fact]
    public void MultiRankWorldWithoutTokenIsRefusedWithAHelpfulMessage()
    {
        var env = LaunchEnvironment.From(new Dictionary<string, string?> { ["RANK"] = "0", ["WORLD_SIZE"] = "2", ["MASTER_PORT"] = "1" }.GetValueOrDefault);
        var e = Assert.Throws<InvalidOperationException>(() => new CommRuntime(env, "tcp", TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), new CommsLogger()));
        Assert.Contains("DSS_JOB_TOKEN", e.Message);
        Assert.Contains("DSS_ALLOW_NO_TOKEN=1", e.Message);
    }

    [Fact]
    public void UnknownBackendAndMpiWithoutMpirunAreRefused()
    {
        var env = LaunchEnvironment.From(new Dictionary<string, string?> { ["RANK"] = "0", ["WORLD_SIZE"] = "2" }.GetValueOrDefault);
        var e = Assert.Throws<ArgumentException>(() => new CommRuntime(env, "nvlink", TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), new CommsLogger()));
        Assert.Contains("shm, tcp, mpi, hierarchical", e.Message);
        var m = Assert.Throws<InvalidOperationException>(() => new CommRuntime(env, "mpi", TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), new CommsLogger()));
        Assert.Contains("mpi", m.Message);
    }

    [Fact]
    public void HalfPrecisionConversionRoundsOnceAndDividesForAvg()
    {
        using var x = tensor(new float[] { 1f, 3f, -5f, 1f + 1f / 128 }).to(ScalarType.BFloat16);
        var f = new float[4];
        fixed (float* fp = f)
        {
            ElementConvert.ToFloat(ScalarType.BFloat16, StagingPool.PointerOf(x), fp, 4);
            Assert.Equal(new[] { 1f, 3f, -5f, 1f + 1f / 128 }, f);
            using var back = zeros(4, ScalarType.BFloat16);
            ElementConvert.FromFloat(ScalarType.BFloat16, fp, StagingPool.PointerOf(back), 4, divisor: 2f);
            Assert.Equal(new[] { 0.5f, 1.5f, -2.5f, 0.5f + 1f / 256 }, back.to(ScalarType.Float32).data<float>().ToArray());
        }
    }

    [Fact]
    public void StoreServesSetGetAddAndRefusesAWrongToken()
    {
        int port = Infrastructure.RankProcesses.FreePort();
        using var server = new TcpStoreServer(IPAddress.Loopback, port, [1, 2, 3]);
        using var client = new TcpStoreClient(IPAddress.Loopback, port, [1, 2, 3], TimeSpan.FromSeconds(5), 0);
        client.Set("k", "v");
        Assert.Equal("v", client.GetString("k"));
        Assert.Equal(5, client.Add("n", 5));
        Assert.Equal(7, client.Add("n", 2));
        Assert.Throws<TimeoutException>(() => client.Get("missing", TimeSpan.FromMilliseconds(100)));
        var e = Assert.Throws<UnauthorizedAccessException>(() => new TcpStoreClient(IPAddress.Loopback, port, [9, 9], TimeSpan.FromSeconds(5), 0));
        Assert.Contains("token", e.Message);
        // The client gives up first (the store could not prove the client's token); the store counts the unfinished handshake.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref server.RefusedCount) < 1 && sw.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(10);
        Assert.Equal(1, server.RefusedCount);
    }

    [Fact]
    public void CommsLoggerRecordsCountsBytesAndBusBandwidth()
    {
        var logger = new CommsLogger();
        logger.Configure(enabled: true, profAll: false, profOps: ["all_reduce"]);
        using var g = new SingleProcessGroup(0, TimeSpan.FromSeconds(5), logger);
        using var t = ones(256);
        g.AllReduce(t);
        g.AllReduce(t);
        g.Broadcast(t, 0); // not in prof_ops
        var s = Assert.Single(logger.Stats.Values);
        Assert.Equal(("all_reduce", 1024L, 2L), (s.Operation, s.MessageBytes, s.Count));
        Assert.Contains("all_reduce", logger.Summary());
        Assert.Equal(1.5, CommsLogger.BusBandwidthFactor("all_reduce", 4));
        Assert.Equal(0.75, CommsLogger.BusBandwidthFactor("all_gather", 4));
    }
}
