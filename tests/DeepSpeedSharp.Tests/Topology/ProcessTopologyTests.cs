using DeepSpeedSharp.Topology;

namespace DeepSpeedSharp.Tests.Topology;

/// <summary>
/// The topology's rank ↔ coordinate mapping and every group's membership, against tables produced by DeepSpeed's own
/// algorithm (<c>deepspeed/runtime/pipe/topology.py</c>: the Cartesian-product mapping, <c>get_axis_comm_lists</c>, the
/// model groups of <c>PipelineParallelGrid</c> from <c>get_axis_list('data', d)</c>, and <c>build_p2p_groups</c>).
/// </summary>
public class ProcessTopologyTests
{
    public static TheoryData<int, int, int, int[][], int[][], int[][], int[][], int[][], int[][]> DeepSpeedTables => new()
    {
        {
            2, 2, 2,
            [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]],
            [[0, 4], [1, 5], [2, 6], [3, 7]],           // pipe
            [[0, 2], [1, 3], [4, 6], [5, 7]],           // data
            [[0, 1], [2, 3], [4, 5], [6, 7]],           // model (tensor)
            [[0, 1, 4, 5], [2, 3, 6, 7]],               // model-parallel groups (one replica each)
            [[0, 4], [1, 5], [2, 6], [3, 7]]            // stage pairs (p2p lists [r, next] deduplicated)
        },
        {
            1, 2, 4,
            [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1], [0, 3, 0], [0, 3, 1]],
            [[0], [1], [2], [3], [4], [5], [6], [7]],
            [[0, 2, 4, 6], [1, 3, 5, 7]],
            [[0, 1], [2, 3], [4, 5], [6, 7]],
            [[0, 1], [2, 3], [4, 5], [6, 7]],
            []
        },
        {
            4, 1, 2,
            [[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [2, 0, 0], [2, 1, 0], [3, 0, 0], [3, 1, 0]],
            [[0, 2, 4, 6], [1, 3, 5, 7]],
            [[0, 1], [2, 3], [4, 5], [6, 7]],
            [[0], [1], [2], [3], [4], [5], [6], [7]],
            [[0, 2, 4, 6], [1, 3, 5, 7]],
            [[0, 2], [2, 4], [4, 6], [0, 6], [1, 3], [3, 5], [5, 7], [1, 7]]
        },
    };

    [Theory]
    [MemberData(nameof(DeepSpeedTables))]
    public void PipeModelDataParallelTopologyMatchesDeepSpeed(int pp, int tp, int dp, int[][] coords, int[][] pipe, int[][] data,
        int[][] model, int[][] modelGroups, int[][] pairs)
    {
        var topo = new PipeModelDataParallelTopology(pp, tp, dp);
        Assert.Equal(new[] { "pipe", "data", "model" }, topo.Axes);
        Assert.Equal(pp * tp * dp, topo.WorldSize);
        for (int r = 0; r < topo.WorldSize; r++)
        {
            var c = topo.GetCoord(r);
            Assert.Equal(coords[r], new[] { c.Pipe, c.Data, c.Model });
            Assert.Equal(r, topo.GetRank(c.ToDictionary()));
            Assert.Equal(r, topo.GetRank(("pipe", c.Pipe), ("data", c.Data), ("model", c.Model)));
        }
        Assert.Equal(pipe, topo.GetAxisCommLists("pipe").Select(l => l.ToArray()));
        Assert.Equal(data, topo.GetAxisCommLists("data").Select(l => l.ToArray()));
        Assert.Equal(model, topo.GetAxisCommLists("model").Select(l => l.ToArray()));
        Assert.Equal(modelGroups, Enumerable.Range(0, dp).Select(d => PipelineParallelGrid.ModelGroupRanks(topo, d).ToArray()));
        Assert.Equal(pairs.Select(p => string.Join(",", p)).Order(), PipelineParallelGrid.StagePairs(topo).Select(p => string.Join(",", p)).Order());
    }

    [Fact]
    public void FiltersAndRepresentationsFollowDeepSpeedsExamples()
    {
        var topo = new PipeModelDataParallelTopology(2, 2, 2);
        Assert.Equal(new[] { 2, 3 }, topo.FilterMatch(("pipe", 0), ("data", 1)));
        Assert.Equal(new[] { 0, 1, 2, 3 }, topo.GetAxisList("pipe", 0));
        Assert.Equal("model_01", topo.GetRankRepr(3));
        Assert.Equal("pipe_00-data_01-model_01", topo.GetRankRepr(3, omitAxes: []));

        var xy = new ProcessTopology(["x", "y"], [2, 3]);
        Assert.Equal(1, xy.GetRank(("x", 0), ("y", 1)));
        Assert.Equal(new[] { 0, 1, 2 }, xy.GetAxisList("x", 0));
        Assert.Equal(new[] { 0, 3 }, xy.GetAxisList("y", 0));
        Assert.Equal(3, xy.GetDim("y"));
        Assert.Equal(0, xy.GetDim("pipe"));
        Assert.Empty(xy.GetAxisCommLists("pipe"));

        var pd = new PipeDataParallelTopology(2, 3);
        Assert.Equal(new[] { "pipe", "data" }, pd.Axes);
        Assert.Equal(new[] { 3, 4, 5 }, pd.GetAxisList("pipe", 1));
    }

    [Fact]
    public void BadTopologiesAreRefusedWithTheReason()
    {
        Assert.Contains("dimension 0", Assert.Throws<ArgumentException>(() => new PipeModelDataParallelTopology(0, 1, 1)).Message);
        Assert.Contains("one dimension per axis", Assert.Throws<ArgumentException>(() => new ProcessTopology(["a", "b"], [2])).Message);
        Assert.Contains("distinct", Assert.Throws<ArgumentException>(() => new ProcessTopology(["a", "a"], [2, 2])).Message);
        var topo = new PipeModelDataParallelTopology(2, 2, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => topo.GetCoord(8));
        Assert.Contains("each axis", Assert.Throws<ArgumentException>(() => topo.GetRank(("pipe", 0))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => topo.GetRank(("pipe", 2), ("data", 0), ("model", 0)));
    }
}
