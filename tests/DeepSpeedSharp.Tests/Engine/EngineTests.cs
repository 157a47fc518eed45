using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Engine;

public class EngineTests
{
    private static Sequential TinyModel(int seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3));
    }

    private static (Tensor X, Tensor Y) Data(int n, int seed)
    {
        var g = new Generator((ulong)seed);
        return (torch.randn(n, 6, generator: g), torch.randn(n, 3, generator: g));
    }

    private static float[] Flat(nn.Module m) => m.parameters().SelectMany(p => p.detach().flatten().data<float>().ToArray()).ToArray();

    private static DeepSpeedEngine Build(nn.Module model, string config) => DeepSpeed.Initialize(model, config: config).Engine;

    [Fact]
    public void GradientAccumulationMatchesOneLargeMicroBatch()
    {
        const string optimizer = "\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.01, \"weight_decay\": 0.01}}";
        var a = TinyModel(1);
        var b = TinyModel(1);
        var ea = Build(a, $"{{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2, {optimizer}}}");
        var eb = Build(b, $"{{\"train_micro_batch_size_per_gpu\": 8, \"gradient_accumulation_steps\": 1, {optimizer}}}");
        Assert.Equal(8, ea.TrainBatchSize);
        for (int step = 0; step < 5; step++)
        {
            var (x, y) = Data(8, 100 + step);
            for (int m = 0; m < 2; m++)
            {
                var loss = nn.functional.mse_loss(ea.Forward(x.narrow(0, 4 * m, 4)), y.narrow(0, 4 * m, 4));
                ea.Backward(loss);
                ea.Step();
            }
            eb.Backward(nn.functional.mse_loss(eb.Forward(x), y));
            eb.Step();
        }
        var pa = Flat(a);
        var pb = Flat(b);
        for (int i = 0; i < pa.Length; i++) Assert.True(Math.Abs(pa[i] - pb[i]) <= 1e-6, $"parameter element {i}: {pa[i]} vs {pb[i]}");
        Assert.Equal(5, ea.GlobalSteps);
        Assert.Equal(10, ea.MicroSteps);
        Assert.Equal(40, ea.GlobalSamples);
    }

    [Fact]
    public void OptimizerStepsOnlyAtTheAccumulationBoundary()
    {
        var model = TinyModel(2);
        var engine = Build(model, "{\"train_batch_size\": 6, \"train_micro_batch_size_per_gpu\": 2, \"optimizer\": {\"type\": \"sgd\", \"params\": {\"lr\": 0.1}}}");
        Assert.Equal(3, engine.GradientAccumulationSteps);
        var before = Flat(model);
        var boundaries = new List<bool>();
        for (int m = 0; m < 3; m++)
        {
            boundaries.Add(engine.IsGradientAccumulationBoundary());
            var (x, y) = Data(2, m);
            var scaled = engine.Backward(nn.functional.mse_loss(engine.Forward(x), y));
            engine.Step();
            if (m < 2)
            {
                Assert.Equal(before, Flat(model));
                Assert.False(engine.WasStepApplied());
            }
        }
        Assert.Equal(new[] { false, false, true }, boundaries);
        Assert.True(engine.WasStepApplied());
        Assert.NotEqual(before, Flat(model));
        Assert.Equal(1, engine.GlobalSteps);
        Assert.All(model.parameters(), p => Assert.Equal(0f, p.grad is null ? 0f : p.grad.abs().sum().item<float>()));
    }

    [Fact]
    public void BackwardReturnsTheLossDividedByAccumulationSteps()
    {
        var engine = Build(TinyModel(3), "{\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 4, \"optimizer\": {\"type\": \"sgd\", \"params\": {\"lr\": 0.1}}}");
        var (x, y) = Data(2, 7);
        var loss = nn.functional.mse_loss(engine.Forward(x), y);
        var scaled = engine.Backward(loss);
        Assert.Equal(loss.item<float>() / 4, scaled.item<float>(), 6);
    }

    [Fact]
    public void GradientClippingScalesTheUpdateToTheGlobalNorm()
    {
        // SGD with lr 1: the update equals the (clipped) gradient, so its global norm must be the clip value.
        var model = TinyModel(4);
        var engine = Build(model, "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_clipping\": 0.05, \"optimizer\": {\"type\": \"sgd\", \"params\": {\"lr\": 1.0}}}");
        var before = Flat(model);
        var (x, y) = Data(4, 9);
        engine.Backward(nn.functional.mse_loss(engine.Forward(x), y) * 100);
        engine.Step();
        var after = Flat(model);
        double norm = Math.Sqrt(before.Zip(after, (p, q) => (double)(p - q) * (p - q)).Sum());
        Assert.True(engine.GetGlobalGradNorm() > 0.05, $"the test needs a gradient norm above the clip value, got {engine.GetGlobalGradNorm()}");
        Assert.Equal(0.05, norm, 4);
    }

    [Fact]
    public void NonFiniteGradientsSkipTheStep()
    {
        var model = TinyModel(5);
        var engine = Build(model, "{\"train_micro_batch_size_per_gpu\": 2, \"optimizer\": {\"type\": \"adam\"}}");
        var before = Flat(model);
        var (x, y) = Data(2, 1);
        engine.Backward(nn.functional.mse_loss(engine.Forward(x), y) * float.PositiveInfinity);
        engine.Step();
        Assert.Equal(1, engine.SkippedSteps);
        Assert.Equal(1, engine.GlobalSteps);
        Assert.False(engine.WasStepApplied());
        Assert.Equal(before, Flat(model));
    }

    [Fact]
    public void SchedulerFromTheConfigDrivesTheLearningRate()
    {
        // WarmupLR, linear: lr(i) = min + (max - min) * i / warmup_num_steps. As in DeepSpeed, construction writes
        // lr(0) and each optimizer step is followed by scheduler.step() with last_batch_iteration = 0, 1, 2, ...,
        // so after 4 optimizer steps the learning rate for the next step is lr(3).
        var (engine, optimizer, scheduler) = DeepSpeed.Initialize(TinyModel(6), config:
            "{\"train_micro_batch_size_per_gpu\": 2, \"optimizer\": {\"type\": \"adamw\", \"params\": {\"lr\": 0.5}}," +
            " \"scheduler\": {\"type\": \"WarmupLR\", \"params\": {\"warmup_min_lr\": 0, \"warmup_max_lr\": 0.1, \"warmup_num_steps\": 10, \"warmup_type\": \"linear\"}}}");
        Assert.NotNull(scheduler);
        Assert.Same(optimizer, engine.Optimizer);
        for (int s = 0; s < 4; s++)
        {
            var (x, y) = Data(2, s);
            engine.Backward(nn.functional.mse_loss(engine.Forward(x), y));
            engine.Step();
        }
        Assert.Equal(0.1 * 3 / 10, engine.GetLr()[0], 12);
    }

    [Fact]
    public void ConflictingOptimizerSourcesAreRejected()
    {
        var model = TinyModel(7);
        var opt = optim.SGD(model.parameters(), 0.1);
        var e = Assert.Throws<ArgumentException>(() => DeepSpeed.Initialize(model, optimizer: opt,
            config: "{\"train_micro_batch_size_per_gpu\": 2, \"optimizer\": {\"type\": \"adam\"}}"));
        Assert.Contains("optimizer", e.Message);
    }

    [Fact]
    public void AutoBatchKeysAreResolvedFromTheProgram()
    {
        var engine = DeepSpeed.Initialize(TinyModel(8), config: "{\"train_micro_batch_size_per_gpu\": \"auto\", \"gradient_accumulation_steps\": 2}",
            trainMicroBatchSizePerGpu: 3).Engine;
        Assert.Equal(6, engine.TrainBatchSize);
        Assert.Throws<DeepSpeedConfigException>(() => DeepSpeed.Initialize(TinyModel(8), config: "{\"train_micro_batch_size_per_gpu\": \"auto\"}"));
    }

    [Fact]
    public void StepWithoutAnOptimizerSaysWhatIsMissing()
    {
        var engine = Build(TinyModel(9), "{\"train_micro_batch_size_per_gpu\": 2}");
        var (x, y) = Data(2, 0);
        engine.Backward(nn.functional.mse_loss(engine.Forward(x), y));
        var e = Assert.Throws<InvalidOperationException>(() => engine.Step());
        Assert.Contains("optimizer", e.Message);
    }
}
