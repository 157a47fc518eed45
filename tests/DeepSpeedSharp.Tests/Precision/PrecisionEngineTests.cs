using DeepSpeedSharp.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>The engine's precision handling in one process: dtypes, loss scaling, skipped steps, offload rules.</summary>
public class PrecisionEngineTests
{
    private static nn.Module<Tensor, Tensor> Tiny()
    {
        torch.manual_seed(11);
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2));
    }

    private static (Tensor X, Tensor Y) Batch() => (torch.randn(2, 4, generator: new Generator(3)), torch.randn(2, 2, generator: new Generator(4)));

    [Fact]
    public void Bf16CastsTheModelAndFloatInputsAndKeepsFp32MasterWeights()
    {
        var model = Tiny();
        var (engine, optimizer, _) = DeepSpeed.Initialize(model, config: """{"train_micro_batch_size_per_gpu": 2, "bf16": {"enabled": true}, "optimizer": {"type": "adamw"}}""");
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var (x, y) = Batch();
        var output = engine.Forward(x); // fp32 input, cast by the engine
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        engine.Backward(nn.functional.mse_loss(output.to(ScalarType.Float32), y));
        engine.Step();
        Assert.True(engine.WasStepApplied());
        Assert.All(optimizer!.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
    }

    [Fact]
    public void Fp16OverflowSkipsTheStepHalvesTheScaleAndHoldsTheSchedule()
    {
        // 2^24 makes the fp16 gradients overflow; hysteresis 1 halves the scale on the first overflow.
        var model = Tiny();
        var engine = DeepSpeed.Initialize(model, config: """
            {"train_micro_batch_size_per_gpu": 2, "fp16": {"enabled": true, "initial_scale_power": 24, "hysteresis": 1},
             "optimizer": {"type": "adamw", "params": {"lr": 0.1}},
             "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 10, "warmup_type": "linear", "warmup_max_lr": 0.1}}}
            """).Engine;
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        double lrBefore = engine.GetLr()[0];
        var (x, y) = Batch();
        engine.Backward(nn.functional.mse_loss(engine.Forward(x).to(ScalarType.Float32), y) * 1e4);
        engine.Step();
        Assert.Equal(1, engine.SkippedSteps);
        Assert.False(engine.WasStepApplied());
        Assert.Equal(Math.Pow(2, 23), engine.LossScale);
        Assert.Equal(lrBefore, engine.GetLr()[0]);
        Assert.All(model.parameters().Zip(before), t => Assert.True(t.First.eq(t.Second).all().item<bool>()));
    }

    [Fact]
    public void Fp16StaticScaleIsUsedAndUnscaled()
    {
        // A static scale changes nothing about the update: same parameters as the unscaled fp16 run with scale 1.
        var a = Tiny();
        var b = Tiny();
        var ea = DeepSpeed.Initialize(a, config: """{"train_micro_batch_size_per_gpu": 2, "fp16": {"enabled": true, "loss_scale": 128}, "optimizer": {"type": "sgd", "params": {"lr": 0.5}}}""").Engine;
        var eb = DeepSpeed.Initialize(b, config: """{"train_micro_batch_size_per_gpu": 2, "fp16": {"enabled": true, "loss_scale": 1}, "optimizer": {"type": "sgd", "params": {"lr": 0.5}}}""").Engine;
        Assert.Equal(128, ea.LossScale);
        var (x, y) = Batch();
        foreach (var e in new[] { ea, eb })
        {
            e.Backward(nn.functional.mse_loss(e.Forward(x).to(ScalarType.Float32), y));
            e.Step();
        }
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
            Assert.True(pa.to(ScalarType.Float32).allclose(pb.to(ScalarType.Float32), rtol: 1e-2, atol: 1e-3));
    }

    [Fact]
    public void OffloadNeedsTheCpuAdamUnlessForcedOff()
    {
        const string offload = """{"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}} %EXTRA%}""";
        var e = Assert.Throws<DeepSpeedConfigException>(() => DeepSpeed.Initialize(Tiny(), config: offload.Replace("%EXTRA%", ""),
            optimizerFactory: ps => optim.AdamW(ps)));
        Assert.Contains("DeepSpeedCpuAdam", e.Message);
        var engine = DeepSpeed.Initialize(Tiny(), config: offload.Replace("%EXTRA%", ", \"zero_force_ds_cpu_optimizer\": false"),
            optimizerFactory: ps => optim.AdamW(ps)).Engine;
        Assert.NotNull(engine.Optimizer);
        var fromConfig = DeepSpeed.Initialize(Tiny(), config: offload.Replace("%EXTRA%", ", \"optimizer\": {\"type\": \"Adam\"}")).Engine;
        Assert.IsType<DeepSpeedSharp.Optim.CpuAdam.DeepSpeedCpuAdam>(fromConfig.Optimizer);
    }

    [Fact]
    public void ReducedPrecisionCarriesAnOptimizerBuiltOverTheModelToTheMasters()
    {
        var model = Tiny();
        var client = optim.AdamW(model.parameters(), lr: 0.005);
        var result = DeepSpeed.Initialize(model, optimizer: client, config: """{"train_micro_batch_size_per_gpu": 2, "bf16": {"enabled": true}}""");
        // The bf16 model's parameters are not what is stepped: the fp32 masters are, by an AdamW like the client's.
        Assert.IsType<AdamW>(result.Optimizer);
        Assert.NotSame(client, result.Optimizer);
        Assert.Equal(0.005, result.Optimizer!.ParamGroups.Single().LearningRate);
        Assert.All(result.Optimizer.ParamGroups.Cast<ParamGroup>().SelectMany(g => g.Parameters), p => Assert.Equal(ScalarType.Float32, p.dtype));
    }
}
