using System.Text.RegularExpressions;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Tests.Config;
using DeepSpeedSharp.Topology;

namespace DeepSpeedSharp.Tests.Topology;

/// <summary>The layout's rules on paper (<see cref="ParallelLayout.Plan"/>), as <c>dss validate-config</c> applies them, and the docs' table of them.</summary>
public class ParallelLayoutTests
{
    private static DeepSpeedConfig Config(string json) => DeepSpeedConfig.FromJson(json);

    private static IReadOnlyList<string> Errors(string json, int world, int? pipeline = null, int tensor = 1, int virtualStages = 1) =>
        ParallelLayout.Plan(Config(json), world, pipeline, tensor, virtualStages).Errors();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void ZeroStagesZeroToTwoCombineWithAPipelineWhereverTheStagesComeFrom(int stage)
    {
        Assert.Empty(Errors($$$"""{"zero_optimization": {"stage": {{{stage}}}}}""", 4, pipeline: 2));
        Assert.Empty(Errors($$$"""{"pipeline": {"stages": 2}, "zero_optimization": {"stage": {{{stage}}}}}""", 4));
        Assert.Empty(Errors($$$"""{"pipeline": {"stages": "auto"}, "zero_optimization": {"stage": {{{stage}}}}}""", 8, pipeline: 2, tensor: 2));
    }

    [Fact]
    public void ZeroThreeWithAPipelineIsRefusedOnceNamingWhereTheStagesCameFrom()
    {
        Assert.Equal(["zero_optimization.stage 3 cannot be combined with pipeline parallelism (pipeline.stages is 2), as in DeepSpeed; use ZeRO stage 0, 1 or 2"],
            Errors("""{"pipeline": {"stages": 2}, "zero_optimization": {"stage": 3}}""", 4));
        Assert.Equal(["zero_optimization.stage 3 cannot be combined with pipeline parallelism (--pipeline is 4), as in DeepSpeed; use ZeRO stage 0, 1 or 2"],
            Errors("""{"zero_optimization": {"stage": 3}}""", 4, pipeline: 4));
        Assert.Empty(Errors("""{"zero_optimization": {"stage": 3}}""", 4, pipeline: 1, tensor: 2));
    }

    [Fact]
    public void EveryBrokenRuleIsReportedWithTheSizesAndKeys()
    {
        Assert.Equal(["pipeline 2 × tensor 2 does not divide the world of 6 ranks: the data-parallel size is world / (pipeline × tensor)"],
            Errors("{}", 6, pipeline: 2, tensor: 2));
        Assert.Equal(["pipeline.stages is 4 in the config, but --pipeline is 2; set pipeline.stages to 2 or \"auto\""],
            Errors("""{"pipeline": {"stages": 4}}""", 4, pipeline: 2));
        Assert.Equal(["zero_optimization.zero_hpz_partition_size = 3 must divide the data-parallel size 4 (set it to the number of ranks per host)"],
            Errors("""{"zero_optimization": {"stage": 3, "zero_hpz_partition_size": 3}}""", 8, tensor: 2));
        Assert.Contains("pipeline.run_ahead_micro_batches 1 does not combine with 2 virtual stages",
            Assert.Single(Errors("""{"pipeline": {"run_ahead_micro_batches": 1}}""", 2, pipeline: 2, virtualStages: 2)));
        var two = Errors("""{"pipeline": {"stages": 3}, "zero_optimization": {"stage": 3}}""", 4, pipeline: 2);
        Assert.Equal(2, two.Count);
        var e = Assert.Throws<DeepSpeedConfigException>(() => ParallelLayout.Plan(Config("""{"pipeline": {"stages": 3}, "zero_optimization": {"stage": 3}}"""), 4, 2).Validate());
        Assert.Equal(two, e.Errors);
    }

    [Fact]
    public void BatchSizesSplitOverTheDataParallelRanksOnlyAndVirtualStagesNeedWholeRounds()
    {
        var layout = ParallelLayout.Plan(Config("""{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 2}"""), 8, pipeline: 2, tensor: 2);
        Assert.Equal(new BatchSizes(16, 2, 4), layout.ResolveBatchSizes());
        Assert.Equal("pipeline 2 stages × tensor 2 × data parallel 2 = 8 ranks; ZeRO stage 0", layout.ToString());
        var interleaved = ParallelLayout.Plan(Config("""{"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 3}"""), 2, pipeline: 2, virtualStages: 2);
        Assert.Contains("gradient_accumulation_steps 3) to be a multiple of the pipeline stages (2)",
            Assert.Throws<DeepSpeedConfigException>(() => interleaved.ResolveBatchSizes()).Message);
        Assert.Equal("data parallel 4 = 4 ranks; ZeRO stage 3 with hpZ partitions of 2",
            ParallelLayout.Plan(Config("""{"zero_optimization": {"stage": 3, "zero_hpz_partition_size": 2}}"""), 4).ToString());
    }

    /// <summary>docs/topology.md's table of ZeRO stages with a pipeline says what the rules decide.</summary>
    [Fact]
    public void TheDocsTableOfZeroWithAPipelineMatchesTheRules()
    {
        var doc = File.ReadAllText(Path.Combine(ConfigTestHelpers.RepoRoot() ?? throw new InvalidOperationException("no repository root"), "docs", "topology.md"));
        var rows = Regex.Matches(doc, @"^\| (\d) \| (allowed|refused)[^|]*\|$", RegexOptions.Multiline);
        Assert.Equal(4, rows.Count);
        foreach (Match row in rows)
        {
            int stage = int.Parse(row.Groups[1].Value);
            bool allowed = row.Groups[2].Value == "allowed";
            Assert.Equal(allowed, Errors($$$"""{"zero_optimization": {"stage": {{{stage}}}}}""", 2, pipeline: 2).Count == 0);
        }
    }
}
