using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Topology;

/// <summary>
/// Eight real processes lay the world out as pipe 2 × tensor 2 × data 2: every rank's groups have DeepSpeed's members,
/// every group (and each stage pair) completes an all-reduce, and the stage flags and model-parallel ranks agree.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class GridMultiProcessTests
{
    [Fact]
    public void EightRanksBuildDeepSpeedsGroups()
    {
        var results = RankProcesses.Run("grid", 8, ["2", "2"], new RankOptions { Timeout = TimeSpan.FromSeconds(180) });
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        var lines = results.Select(r => JsonDocument.Parse(r.Stdout.Split('\n').Single(l => l.StartsWith("grid ", StringComparison.Ordinal))[5..]).RootElement).ToArray();
        int[] Ints(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();
        int[][] data = [[0, 2], [1, 3], [4, 6], [5, 7]], pipe = [[0, 4], [1, 5], [2, 6], [3, 7]], tensor = [[0, 1], [2, 3], [4, 5], [6, 7]], model = [[0, 1, 4, 5], [2, 3, 6, 7]];
        for (int rank = 0; rank < 8; rank++)
        {
            var e = lines[rank];
            Assert.Equal(rank, e.GetProperty("rank").GetInt32());
            Assert.Equal(data.Single(g => g.Contains(rank)), Ints(e, "data_group"));
            Assert.Equal(pipe.Single(g => g.Contains(rank)), Ints(e, "pipe_group"));
            Assert.Equal(tensor.Single(g => g.Contains(rank)), Ints(e, "tensor_group"));
            var replica = model.Single(g => g.Contains(rank));
            Assert.Equal(replica, Ints(e, "model_group"));
            Assert.Equal(Array.IndexOf(replica, rank), e.GetProperty("mp_rank").GetInt32());
            Assert.Equal(rank / 4, e.GetProperty("pipe").GetInt32());
            Assert.Equal(rank / 2 % 2, e.GetProperty("data").GetInt32());
            Assert.Equal(rank % 2, e.GetProperty("model").GetInt32());
            Assert.Equal(rank < 4, e.GetProperty("first").GetBoolean());
            Assert.Equal(rank >= 4, e.GetProperty("last").GetBoolean());
            Assert.Equal(new[] { (rank + 4) % 8 }, Ints(e, "peers"));
        }
    }
}
