using DeepSpeedSharp.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Data;

/// <summary><c>DeepSpeed.Initialize(..., trainingData:)</c>: the loader it returns and its position in checkpoints.</summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public sealed class TrainingDataTests
{
    private const string Config = """
        { "train_micro_batch_size_per_gpu": 4, "optimizer": { "type": "SGD", "params": { "lr": 0.01 } } }
        """;

    private static utils.data.Dataset<IList<Tensor>> Data() =>
        utils.data.TensorDataset(randn(30, 3, generator: new Generator(1)), arange(30, dtype: ScalarType.Int64));

    private static DeepSpeedInitResult Build()
    {
        torch.manual_seed(0);
        return DeepSpeed.Initialize(nn.Linear(3, 1), config: Config, trainingData: Data());
    }

    private static long[] Step(DeepSpeedSharp.Engine.DeepSpeedEngine engine, Tensor[] batch)
    {
        using var scope = NewDisposeScope();
        engine.Backward(engine.Forward(batch[0]).square().mean());
        engine.Step();
        return batch[1].data<long>().ToArray();
    }

    [Fact]
    public void Initialize_returns_a_loader_of_micro_batches_over_the_whole_data_on_one_rank()
    {
        var (engine, _, loader, _) = Build();
        Assert.NotNull(loader);
        Assert.Same(loader, engine.TrainingDataLoader);
        Assert.Equal(8, loader.Count);   // 30 samples in batches of 4: the last has 2
        var seen = loader.Select(b => Step(engine, b)).ToList();
        Assert.Equal([4, 4, 4, 4, 4, 4, 4, 2], seen.Select(b => b.Length));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), seen.SelectMany(b => b).Order());
        Assert.Equal(1, loader.Sampler.Epoch);
    }

    [Fact]
    public void A_checkpoint_saves_the_loaders_position_and_a_resumed_run_continues_with_the_next_batch()
    {
        string dir = Directory.CreateTempSubdirectory("dss-data-ckpt").FullName;
        try
        {
            var first = Build();
            var all = new DistributedSampler(30, 1, 0, seed: 0).ToList();
            var head = first.TrainingDataLoader!.Take(3).Select(b => Step(first.Engine, b)).SelectMany(b => b).ToList();
            first.Engine.SaveCheckpoint(dir);
            Assert.Equal(all.Take(12), head);

            var resumed = Build();
            resumed.Engine.LoadCheckpoint(dir);
            Assert.Equal(new SamplerState(0, 12), resumed.TrainingDataLoader!.Sampler.State);
            var tail = resumed.TrainingDataLoader.Select(b => Step(resumed.Engine, b)).SelectMany(b => b);
            Assert.Equal(all.Skip(12), tail);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
