using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>
/// ZeRO++'s groups and quantized gradient reduce-scatter on real processes whose hosts are set per rank (DSS_HOST_ID,
/// as the launcher sets it from the hostfile): the result is within the int8 rounding bound of the exact sum, the
/// hpZ group follows the hosts, and layouts hpZ cannot use fail with one line naming the ranks or the sizes.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class ZeroPlusPlusGroupTests
{
    private static IReadOnlyList<RankResult> Run(int ranks, string zero, Func<int, string> host) =>
        RankProcesses.Run("zero-plus-plus", ranks, [zero], new RankOptions
        {
            Timeout = TimeSpan.FromSeconds(90),
            EnvForRank = r => new Dictionary<string, string?> { ["DSS_HOST_ID"] = host(r) },
        });

    [Fact]
    public void QuantizedReduceScatterOverTwoHostsIsWithinTheRoundingBoundAndHpzGroupsFollowTheHosts()
    {
        var results = Run(4, """{ "stage": 3, "zero_hpz_partition_size": 2, "zero_quantized_gradients": true }""", r => r < 2 ? "hostA" : "hostB");
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        for (int rank = 0; rank < 4; rank++)
        {
            Assert.Contains($"OK hpz rank {rank} secondary [{(rank < 2 ? "0,1" : "2,3")}]", results[rank].Stdout);
            Assert.Contains($"OK qgz hops=2x2 rank {rank} ", results[rank].Stdout);
            // The comms logger's split: the hierarchical all-gather of 16,000 bytes per rank sends them across once (to the
            // rank of its local index on the other host) and the 2 chunks it then holds to its host-mate (32,000); the
            // flat exchange sent them to 3 peers, 2 across (32,000 across). The hierarchical all-reduce (24,000 bytes in
            // all) sends only its cross-host stage's 2·(1/2)·(16,000/2).
            Assert.Contains("TRAFFIC all_gather 48000 16000 all_reduce 24000 8000", results[rank].Stdout);
        }
    }

    [Fact]
    public void HostsWithDifferentRankCountsReduceInOneQuantizedHop()
    {
        var results = Run(3, """{ "stage": 3, "zero_quantized_gradients": true }""", r => r < 2 ? "hostA" : "hostB");
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("OK qgz hops=1x3 rank 0 ", results[0].Stdout);
        Assert.Contains("reduced in one quantized hop over the whole group", results[0].Stdout + results[0].Stderr);
    }

    [Fact]
    public void HpzGroupsThatWouldSpanHostsOrDoNotDivideTheGroupFailWithOneLine()
    {
        var across = Run(4, """{ "stage": 3, "zero_hpz_partition_size": 2 }""", r => r % 2 == 0 ? "hostA" : "hostB");
        Assert.All(across, r => Assert.Equal(3, r.ExitCode));
        Assert.Contains("ERROR zero_optimization.zero_hpz_partition_size = 2 puts ranks [0,1] in one secondary group, but they run on hosts hostA, hostB; " +
                        "hpZ keeps a model copy per host: set it to the number of ranks per host or a divisor of it", across[0].Stdout);
        var uneven = Run(4, """{ "stage": 3, "zero_hpz_partition_size": 3 }""", _ => "hostA");
        Assert.All(uneven, r => Assert.Equal(3, r.ExitCode));
        Assert.Contains("ERROR zero_optimization.zero_hpz_partition_size = 3 must divide the data-parallel size 4 (set it to the number of ranks per host)", uneven[0].Stdout);
    }
}
