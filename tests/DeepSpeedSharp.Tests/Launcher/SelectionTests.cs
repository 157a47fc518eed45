using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>Hostfile parsing and --include/--exclude/--num_nodes/--num_gpus, on the examples of DeepSpeed's docs.</summary>
public class SelectionTests
{
    private static OrderedDictionary<string, int> Pool(params (string Host, int Slots)[] hosts)
    {
        var p = new OrderedDictionary<string, int>();
        foreach (var (h, s) in hosts) p.Add(h, s);
        return p;
    }

    private static string Json(WorldInfo w) => w.ToJson();

    [Fact]
    public void HostfileKeepsOrderSkipsCommentsAndBlankLines()
    {
        var pool = Hostfile.Parse(["# comment", "", "worker-1 slots=4", "  worker-0   slots=2 extra", "worker-2 slots=0"]);
        Assert.Equal(["worker-1", "worker-0", "worker-2"], pool.Keys);
        Assert.Equal([4, 2, 0], pool.Values);
    }

    [Theory]
    [InlineData("worker-0 slots=4\nworker-0 slots=2", "multiple entries for worker-0")]
    [InlineData("worker-0 slots=4\nworker-1 4", "bad entry: 'worker-1 4'")]
    [InlineData("worker-0 slots=four", "bad entry")]
    [InlineData("# only a comment\n", "empty")]
    public void BadHostfilesFailWithDeepSpeedsMessages(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => Hostfile.Parse(text.Split('\n'), "hosts"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("hosts", e.Message);
    }

    [Fact]
    public void MissingHostfileMeansLocalRun() => Assert.Null(Hostfile.Fetch("/nonexistent/hostfile"));

    [Fact]
    public void IncludeExampleFromDeepSpeedDocs()
    {
        // -i "worker-0@worker-1:0,2": all slots of worker-0, slots 0 and 2 of worker-1.
        var w = ResourceFilter.Apply(Pool(("worker-0", 4), ("worker-1", 4)), "worker-0@worker-1:0,2", "");
        Assert.Equal("{\"worker-0\":[0,1,2,3],\"worker-1\":[0,2]}", Json(w));
    }

    [Fact]
    public void ExcludeExampleFromDeepSpeedDocs()
    {
        // -e "worker-1:0": everything except slot 0 of worker-1.
        var w = ResourceFilter.Apply(Pool(("worker-0", 4), ("worker-1", 4)), "", "worker-1:0");
        Assert.Equal("{\"worker-0\":[0,1,2,3],\"worker-1\":[1,2,3]}", Json(w));
    }

    [Fact]
    public void ExcludingAWholeHostDropsIt_IncludeKeepsHostfileOrder()
    {
        var pool = Pool(("worker-0", 2), ("worker-1", 2), ("worker-2", 2));
        Assert.Equal("{\"worker-0\":[0,1],\"worker-2\":[0,1]}", Json(ResourceFilter.Apply(pool, "", "worker-1")));
        Assert.Equal("{\"worker-0\":[1],\"worker-2\":[0,1]}", Json(ResourceFilter.Apply(pool, "worker-2@worker-0:1,1", "")));
        Assert.Equal("{\"worker-1\":[0]}", Json(ResourceFilter.Apply(pool, "", "worker-0@worker-2@worker-1:1")));
    }

    [Theory]
    [InlineData("jeff", "", "Hostname 'jeff' not found")]
    [InlineData("worker-0:4", "", "No slot '4' specified on host 'worker-0'")]
    [InlineData("", "worker-0:1,9", "No slot '9'")]
    [InlineData("worker-0", "worker-1", "mutually exclusive")]
    [InlineData("worker-0:x", "", "slot 'x'")]
    public void BadResourceStringsAreRejected(string include, string exclude, string expected)
    {
        var e = Assert.ThrowsAny<Exception>(() => ResourceFilter.Apply(Pool(("worker-0", 4), ("worker-1", 4)), include, exclude));
        Assert.Contains(expected, e.Message);
    }

    private static LaunchOptions Options(params string[] flags) => LaunchOptions.Parse([.. flags, "prog"]);

    [Fact]
    public void NumNodesTakesTheFirstHosts_NumGpusSetsSlotsPerHost()
    {
        var pool = Pool(("worker-0", 4), ("worker-1", 4), ("worker-2", 4));
        var plan = ResourcePlanner.Plan(Options("--num_nodes", "2"), pool);
        Assert.Equal("{\"worker-0\":[0,1,2,3],\"worker-1\":[0,1,2,3]}", Json(plan.World));
        Assert.True(plan.MultiNode);
        plan = ResourcePlanner.Plan(Options("--num_nodes=1", "--num_accelerators", "2"), pool);
        Assert.Equal("{\"worker-0\":[0,1]}", Json(plan.World));
        Assert.False(plan.MultiNode);
        Assert.True(ResourcePlanner.Plan(Options("--num_nodes=1", "--force_multi"), pool).MultiNode);
        // As in DeepSpeed, --num_gpus overrides the hostfile's slot count.
        Assert.Equal("{\"worker-0\":[0,1,2,3,4,5]}", Json(ResourcePlanner.Plan(Options("--num_nodes=1", "--num_gpus=6"), pool).World));
    }

    [Fact]
    public void WithoutHostfileEveryRankIsLocal()
    {
        var plan = ResourcePlanner.Plan(Options("--num_gpus", "4"), null);
        Assert.Equal("{\"localhost\":[0,1,2,3]}", Json(plan.World));
        Assert.False(plan.MultiNode);
        Assert.Equal("{\"localhost\":[0]}", Json(ResourcePlanner.Plan(Options(), null).World));
        Assert.Equal("{\"localhost\":[0,3]}", Json(ResourcePlanner.Plan(Options("-i", "localhost:0,3"), null).World));
    }

    [Theory]
    [InlineData("--num_nodes=2|-i=worker-0", "Cannot specify --num_nodes/--num_gpus with --include/--exclude")]
    [InlineData("--num_gpus=1|-e=worker-0", "Cannot specify")]
    [InlineData("--num_nodes=5", "only 2 host(s)")]
    [InlineData("--no_ssh", "--node_rank in [0, 2)")]
    [InlineData("--no_ssh|--node_rank=2", "got 2")]
    public void ConflictingSelectionsAreRejected(string flags, string expected)
    {
        var args = flags.Split('|').SelectMany(f => f.StartsWith("-i=") || f.StartsWith("-e=") ? new[] { f[..2], f[3..] } : new[] { f }).ToArray();
        var e = Assert.Throws<ArgumentException>(() => ResourcePlanner.Plan(Options(args), Pool(("worker-0", 2), ("worker-1", 2))));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void NumNodesAboveOneNeedsAHostfile()
    {
        var e = Assert.Throws<ArgumentException>(() => ResourcePlanner.Plan(Options("--num_nodes", "2"), null));
        Assert.Contains("no extra nodes", e.Message);
    }

    [Fact]
    public void NoSshRunsOnlyTheGivenNode()
    {
        var plan = ResourcePlanner.Plan(Options("--no_ssh", "--node_rank", "1"), Pool(("a", 2), ("b", 3)));
        Assert.False(plan.MultiNode);
        Assert.Equal([2, 3, 4], plan.World.GlobalRanksOf(1));
    }
}
