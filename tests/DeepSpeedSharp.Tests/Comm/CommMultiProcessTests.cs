using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>
/// Runs the collectives in real separate processes: every collective × dtype × size (0, 1, odd, not divisible by
/// the world size, larger than a shared-memory slot) on shm and tcp at world sizes 1–4, plus failure handling.
/// </summary>
public class CommMultiProcessTests
{
    public static TheoryData<string, int> Worlds()
    {
        var d = new TheoryData<string, int>();
        foreach (var b in new[] { "shm", "tcp" })
            for (int n = 1; n <= 4; n++) d.Add(b, n);
        return d;
    }

    [Theory]
    [MemberData(nameof(Worlds))]
    public void EveryCollectiveDtypeAndSizeIsCorrect(string backend, int worldSize)
    {
        // 100_003 elements span many 64 KiB slots; slots make every size span several chunks.
        var results = RankProcesses.Run("comm-matrix", worldSize, [backend, "0,1,7,13,100003"],
            new RankOptions { Env = new Dictionary<string, string?> { ["DSS_SHM_SLOT_BYTES"] = "65536" }, Timeout = TimeSpan.FromSeconds(240) });
        RankProcesses.AssertAllSucceeded(results);
        Assert.All(results, r => Assert.StartsWith("OK ", r.Stdout.Trim().Split('\n')[^1]));
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void KilledRankMakesSurvivorsFailNamingItWithin15Seconds(string backend)
    {
        var results = RankProcesses.Run("comm-failure", 3, [backend, "kill"], new RankOptions { Timeout = TimeSpan.FromSeconds(60) });
        Assert.NotEqual(0, results[2].ExitCode); // the victim was killed
        foreach (var r in results.Take(2))
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            var line = r.Stdout.Split('\n').Single(l => l.StartsWith("CAUGHT", StringComparison.Ordinal));
            Assert.Contains("all_reduce", line);
            Assert.Contains("missing=2", line);
            int ms = int.Parse(line.Split("after=")[1].Split(' ')[0]);
            Assert.True(ms < 15_000, $"rank {r.Rank} noticed the death only after {ms} ms: {line}");
        }
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("tcp")]
    public void MismatchedCollectivesRaiseNamingBothSides(string backend)
    {
        var results = RankProcesses.Run("comm-failure", 2, [backend, "mismatch"], new RankOptions { Timeout = TimeSpan.FromSeconds(60) });
        foreach (var r in results)
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("collective mismatch at sequence number 0", r.Stdout);
            Assert.Contains("all_reduce(", r.Stdout);
            Assert.Contains("broadcast(", r.Stdout);
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

    [Fact]
    public void MultiRankWorldWithoutTokenIsRefusedWithAHelpfulMessage()
    {
        var results = RankProcesses.Run("comm-matrix", 2, ["tcp", "1"],
            new RankOptions { Env = new Dictionary<string, string?> { ["DSS_JOB_TOKEN"] = null }, Timeout = TimeSpan.FromSeconds(60) });
        Assert.All(results, r => Assert.NotEqual(0, r.ExitCode));
        Assert.Contains("DSS_ALLOW_NO_TOKEN", results[0].Stderr);
    }
}
