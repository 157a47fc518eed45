using DeepSpeedSharp.Config;
using DeepSpeedSharp.Topology;

namespace DeepSpeedSharp.Tests.Config;

/// <summary>
/// The <c>elasticity</c> section (issue 33) gives DeepSpeed's numbers: the cases are those of DeepSpeed's
/// <c>tests/unit/elasticity/test_elastic.py</c>, with the values it asserts.
/// </summary>
public class ElasticBatchTests
{
    private static ElasticityConfig TenK(double version = 0.1) => new()
    {
        Enabled = true, MaxTrainBatchSize = 10000, MicroBatchSizes = [8, 12, 16, 17], MinGpus = 32, MaxGpus = 1500, Version = version,
    };

    [Fact]
    public void TheTenThousandCaseGivesDeepSpeedsBatchAndWorldSizes()
    {
        var r = ElasticBatch.Compute(TenK(), 64);
        Assert.Equal(9792, r.TrainBatchSize);
        Assert.Equal(23, r.ValidWorldSizes.Count);
        Assert.Equal(17, r.MicroBatchSize);
        foreach (int w in r.ValidWorldSizes)
            Assert.Contains(TenK().MicroBatchSizes!, m => r.TrainBatchSize % w == 0 && r.TrainBatchSize / w % m == 0);
        var e = Assert.Throws<DeepSpeedConfigException>(() => ElasticBatch.Compute(TenK(), 128));
        Assert.StartsWith("elasticity: data-parallel world size 128 is not one the elastic batch size 9792 can run at; valid world sizes: 32, 34, ", e.Message);
    }

    [Fact]
    public void TheMicroBatchIsTheLargestThatDividesTheShareAndTheBatchStaysWithinItsMaximum()
    {
        var small = new ElasticityConfig { Enabled = true, MaxTrainBatchSize = 32, MicroBatchSizes = [1, 2, 3, 7], MinGpus = 1, MaxGpus = 1500, Version = 0.1 };
        Assert.Equal(3, ElasticBatch.Compute(small, 4).MicroBatchSize);
        var within = new ElasticityConfig { Enabled = true, MaxTrainBatchSize = 100, MicroBatchSizes = [8, 10, 12], MinGpus = 1, MaxGpus = 1500, Version = 0.1 };
        Assert.True(ElasticBatch.Compute(within, 1).TrainBatchSize <= 100);
    }

    [Theory]
    [InlineData(1, new[] { 4, 8 }, 4)]
    [InlineData(2, new[] { 4, 8 }, 8)]
    [InlineData(4, new[] { 4, 8 }, 8)]
    [InlineData(2, new[] { 8 }, 8)]
    [InlineData(4, new[] { 8 }, 8)]
    public void VersionTwoChoosesTheMicroBatchPerDataParallelRank(int modelParallel, int[] micros, int expected)
    {
        var c = TenK(0.2) with { ModelParallelSize = modelParallel, NumGpusPerNode = 8, MaxTrainBatchSize = 64, MicroBatchSizes = micros, MinGpus = 16, MaxGpus = 16 };
        int dataParallel = 16 / modelParallel;
        var r = ElasticBatch.Compute(c, dataParallel);
        Assert.Equal(expected, r.MicroBatchSize);
        Assert.Equal(0, r.TrainBatchSize / dataParallel % r.MicroBatchSize);
    }

    [Fact]
    public void WrongSectionsAreNamed()
    {
        Assert.Equal("elasticity.max_train_batch_size is missing: an enabled elasticity section needs it",
            Assert.Throws<DeepSpeedConfigException>(() => ElasticBatch.Compute(TenK() with { MaxTrainBatchSize = null }, 64)).Message);
        Assert.StartsWith("elasticity.micro_batch_sizes is missing",
            Assert.Throws<DeepSpeedConfigException>(() => ElasticBatch.Compute(TenK() with { MicroBatchSizes = null }, 64)).Message);
        Assert.StartsWith("elasticity.model_parallel_size: version 0.1 does not support model parallelism",
            Assert.Throws<DeepSpeedConfigException>(() => ElasticBatch.Compute(TenK() with { ModelParallelSize = 4, NumGpusPerNode = 8 }, 64)).Message);
        Assert.StartsWith("elasticity.num_gpus_per_node (8) must be divisible by elasticity.model_parallel_size (16)",
            Assert.Throws<DeepSpeedConfigException>(() => ElasticBatch.Compute(TenK(0.2) with { ModelParallelSize = 16, NumGpusPerNode = 8 }, 1)).Message);
        Assert.Contains("elasticity.version: must be a number between 0.1 and 0.2",
            Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson("""{"elasticity": {"enabled": true, "version": 0.3}}""")).Message);
        Assert.Contains("elasticity.micro_batch_sizes[2]",
            Assert.Throws<DeepSpeedConfigException>(() => DeepSpeedConfig.FromJson("""{"elasticity": {"enabled": true, "micro_batch_sizes": [1, 4, -1]}}""")).Message);
    }

    private static BatchSizes Layout(DeepSpeedConfig config, int world, int? microBatchPerGpu = null) =>
        ParallelLayout.Plan(config, world).ResolveBatchSizes(microBatchPerGpu: microBatchPerGpu);

    private const string Elastic = """
        "elasticity": {"enabled": true, "max_train_batch_size": 8, "micro_batch_sizes": [2, 4], "min_gpus": 1, "max_gpus": 2, "version": 0.1
        """;

    /// <summary>The config's batch sizes follow the world size while the global batch stays 8 (what a restart on fewer hosts needs).</summary>
    [Fact]
    public void TheConfigsBatchSizesComeFromTheSectionAtEveryWorldSize()
    {
        var config = DeepSpeedConfig.FromJson($$"""{ {{Elastic}} } }""");
        Assert.Equal(new BatchSizes(8, 4, 1), Layout(config, 2));
        Assert.Equal(new BatchSizes(8, 4, 2), Layout(config, 1));
        Assert.StartsWith("elasticity: data-parallel world size 3 is not one",
            Assert.Throws<DeepSpeedConfigException>(() => Layout(config, 3)).Message);

        var withKeys = DeepSpeedConfig.FromJson($$"""{ "train_batch_size": 16, "gradient_accumulation_steps": "auto", {{Elastic}} } }""");
        Assert.Equal("train_batch_size, gradient_accumulation_steps: elasticity is enabled and sets the batch sizes, so these keys would be ignored; " +
                     "remove them, or set elasticity.ignore_non_elastic_batch_info to true",
            Assert.Throws<DeepSpeedConfigException>(() => Layout(withKeys, 2)).Message);
        var ignored = DeepSpeedConfig.FromJson($$"""{ "train_batch_size": 16, {{Elastic}}, "ignore_non_elastic_batch_info": true } }""");
        Assert.Equal(new BatchSizes(8, 4, 1), Layout(ignored, 2));
        Assert.StartsWith("train_micro_batch_size_per_gpu passed by the program is 2, but elasticity sets it to 4",
            Assert.Throws<DeepSpeedConfigException>(() => Layout(config, 2, microBatchPerGpu: 2)).Message);
    }

    /// <summary><c>dss validate-config --world-size N</c> shows the elastic batch a world of N gets, or names the valid sizes.</summary>
    [Fact]
    public void ValidateConfigShowsTheElasticBatchOrTheValidWorldSizes()
    {
        var file = Path.Combine(Path.GetTempPath(), $"elastic-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """
            {"elasticity": {"enabled": true, "max_train_batch_size": 10000, "micro_batch_sizes": [8, 12, 16, 17], "min_gpus": 32, "max_gpus": 1500, "version": 0.1}}
            """);
        try
        {
            var cmd = new DeepSpeedSharp.Cli.Commands.ValidateConfigCommand();
            var (o1, e1) = (new StringWriter(), new StringWriter());
            Assert.Equal(0, cmd.Run([file, "--world-size", "64"], o1, e1));
            Assert.StartsWith($"{file}: ok: train_batch_size=9792 micro_batch_per_gpu=17 gradient_accumulation_steps=9 at world size 64", o1.ToString());
            var (o2, e2) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, cmd.Run([file, "--world-size", "128"], o2, e2));
            Assert.StartsWith($"{file}: error: elasticity: data-parallel world size 128 is not one the elastic batch size 9792 can run at; valid world sizes: 32, 34,", o2.ToString() + e2.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }
}
