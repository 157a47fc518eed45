using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>
/// Runs the collectives in real separate processes. To keep the suite fast, one launch per backend family runs the
/// whole matrix inside: every collective × dtype (6) × size (0, 1, 7, 13, 70 001 — odd, not divisible by 2, 3 or 4,
/// and several 64 KiB shared-memory slots long) on groups of 4, 3 and 2 ranks (the last k ranks, so group and global
/// ranks differ) and on a world of one; then the failure cases.
/// </summary>
[Trait("Tier", "Full")]
public class CommMultiProcessTests
{
    private const string Sizes = "0,1,7,13,70001";
    private static readonly Dictionary<string, string?> SmallSlots = new() { ["DSS_SHM_SLOT_BYTES"] = "65536" };

    private static void AssertMatrixPassed(IReadOnlyList<RankResult> results, string backend)
    {
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.Contains($"backend={backend}", r.Stdout.Trim().Split('\n')[^1]));
        Assert.All(results, r => Assert.StartsWith("OK ", r.Stdout.Trim().Split('\n')[^1]));
    }

    private static void AssertMismatchCaught(IReadOnlyList<RankResult> results, params string[] backends)
    {
        foreach (var r in results.Take(2))
            foreach (var b in backends)
            {
                var line = r.Stdout.Split('\n').SingleOrDefault(l => l.StartsWith($"MISMATCH-CAUGHT {b}:", StringComparison.Ordinal));
                Assert.True(line != null, $"rank {r.Rank} did not report a mismatch on {b}:\n{r}");
                Assert.Contains("collective mismatch at sequence number 0", line);
                Assert.Contains("all_reduce(", line);
                Assert.Contains("broadcast(", line);
            }
    }

    [Fact]
    public void ShmAndTcpGroupsOf2To4RanksRunEveryCollectiveDtypeAndSizeAndDetectMismatches()
    {
        var results = RankProcesses.Run("comm-matrix", 4, ["shm", Sizes, "shm:4,shm:3,shm:2,tcp:4,tcp:3,tcp:2", "mismatch"],
            new RankOptions { Env = SmallSlots, Timeout = TimeSpan.FromSeconds(120) });
        AssertMatrixPassed(results, "shm");
        AssertMismatchCaught(results, "shm", "tcp");
    }

    [Fact]
    public void WorldOfOneRunsEveryCollective()
    {
        var results = RankProcesses.Run("comm-matrix", 1, ["auto", Sizes], new RankOptions { Timeout = TimeSpan.FromSeconds(60) });
        AssertMatrixPassed(results, "single");
    }

    [Fact]
    public void HierarchicalGroupOverTwoHostsMatchesFlatTcp()
    {
        // Ranks 0-1 claim host A and 2-3 host B: auto picks the hierarchical group (shm inside, tcp across).
        var results = RankProcesses.Run("comm-matrix", 4, ["auto", Sizes], new RankOptions
        {
            Env = SmallSlots, RanksPerHost = 2, Timeout = TimeSpan.FromSeconds(120),
            EnvForRank = r => new Dictionary<string, string?> { ["DSS_HOST_ID"] = r < 2 ? "hostA" : "hostB" },
        });
        AssertMatrixPassed(results, "hierarchical");
    }

    [MpiFact]
    public void MpiGroupsOf1To4RanksRunEveryCollectiveSplitOverTheCountLimitAndDetectMismatches()
    {
        // DSS_MPI_MAX_COUNT=30000 makes the 70 001-element cases take the >2^31 splitting paths.
        var results = RankProcesses.RunMpi("comm-matrix", 4, ["mpi", Sizes, "mpi:4,mpi:3,mpi:2,mpi:1", "mismatch"],
            new RankOptions { Env = new Dictionary<string, string?> { ["DSS_MPI_MAX_COUNT"] = "30000" }, Timeout = TimeSpan.FromSeconds(150) });
        AssertMatrixPassed(results, "mpi");
        AssertMismatchCaught(results, "mpi");
    }

    [Fact]
    public void KilledRankMakesSurvivorsFailNamingItWithin15SecondsOnShmAndTcp()
    {
        var results = RankProcesses.Run("comm-failure", 3, ["shm", "kill", "tcp"], new RankOptions { Timeout = TimeSpan.FromSeconds(60) });
        Assert.NotEqual(0, results[2].ExitCode); // the victim was killed
        foreach (var r in results.Take(2))
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            foreach (var backend in new[] { "shm", "tcp" })
            {
                var line = r.Stdout.Split('\n').Single(l => l.StartsWith($"CAUGHT {backend} ", StringComparison.Ordinal));
                Assert.Contains("all_reduce", line);
                Assert.Contains("missing=2", line);
                int ms = int.Parse(line.Split("after=")[1].Split(' ')[0]);
                Assert.True(ms < 15_000, $"rank {r.Rank} noticed the death on {backend} only after {ms} ms: {line}");
            }
        }
    }

    [Fact]
    public void StoreRefusesConnectionsWithoutTheTokenOrWithOversizedFrames()
    {
        var results = RankProcesses.Run("comm-token", 2, options: new RankOptions { Timeout = TimeSpan.FromSeconds(60) });
        RankProcesses.AssertAllSucceeded(results);
        Assert.Contains("REFUSED wrong token", results[1].Stdout);
        Assert.Contains("REFUSED oversized frame", results[1].Stdout);
    }
}
