using DeepSpeedSharp.ActivationCheckpointing;
using TorchSharp;
using static DeepSpeedSharp.Tests.Checkpointing.CheckpointingTestUtil;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpointing;

[Collection("Checkpointing")]
public class RngTrackerTests : CheckpointingTestBase
{

    [Fact]
    public void ForkUsesTheStreamAndRestoresTheDefaultGenerator()
    {
        using var scope = NewDisposeScope();
        var tracker = new RngStatesTracker();
        tracker.Add("a", 100);
        manual_seed(1);
        var expectedDefault = rand(3);
        manual_seed(100);
        var expectedA1 = rand(3);
        var expectedA2 = rand(3);

        manual_seed(1);
        Tensor a1, a2;
        using (tracker.Fork("a")) a1 = rand(3);
        var d = rand(3); // the default stream is untouched by the fork
        using (tracker.Fork("a")) a2 = rand(3); // the stream continues where it stopped
        Assert.True(BitEqual(expectedDefault, d));
        Assert.True(BitEqual(expectedA1, a1));
        Assert.True(BitEqual(expectedA2, a2));
    }

    [Fact]
    public void AddRejectsReusedNamesAndSeedsAndForkNeedsAStream()
    {
        var tracker = new RngStatesTracker();
        tracker.Add("a", 1);
        Assert.Contains("already exists", Assert.Throws<ArgumentException>(() => tracker.Add("a", 2)).Message);
        Assert.Contains("seed 1", Assert.Throws<ArgumentException>(() => tracker.Add("b", 1)).Message);
        Assert.Contains("ModelParallelManualSeed", Assert.Throws<InvalidOperationException>(() => tracker.Fork()).Message);
        tracker.Reset();
        tracker.Add("a", 1);
        Assert.Equal(new[] { "a" }, tracker.Names);
    }

    [Fact]
    public void ModelParallelManualSeedSeedsDefaultAndModelParallelStreams()
    {
        using var scope = NewDisposeScope();
        manual_seed(1234);
        var expectedDefault = rand(2);
        manual_seed(1234 + 2718); // model-parallel rank 0 without an mpu
        var expectedMp = rand(2);

        Ckpt.ModelParallelManualSeed(1234);
        Tensor mp;
        using (Ckpt.GetRngTracker().Fork()) mp = rand(2);
        Assert.True(BitEqual(expectedDefault, rand(2)));
        Assert.True(BitEqual(expectedMp, mp));
    }

    [Fact]
    public void RecomputeReplaysTheForkedStreamSoTensorParallelDropoutMatches()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var lin = nn.Linear(8, 8);
        var drop = nn.Dropout(0.5);
        var x = randn(4, 8).requires_grad_(true);

        Tensor F(Tensor t)
        {
            var h = lin.call(t);
            using (Ckpt.GetRngTracker().Fork()) h = drop.call(h); // a "model-parallel region"
            return drop.call(h);
        }

        (Dictionary<string, Tensor>, Tensor) Run(bool checkpoint)
        {
            lin.zero_grad();
            x.grad?.zero_();
            Ckpt.ModelParallelManualSeed(7);
            var y = checkpoint ? Ckpt.Checkpoint(F, x) : F(x);
            y = Ckpt.Checkpoint(F, y); // a second segment advances the tracked stream further
            y.sum().backward();
            return (Grads(lin), x.grad!.clone());
        }

        var (pg, px) = Run(false);
        var (cg, cx) = Run(true);
        AssertBitIdentical(pg, cg);
        Assert.True(BitEqual(px, cx));
    }
}
