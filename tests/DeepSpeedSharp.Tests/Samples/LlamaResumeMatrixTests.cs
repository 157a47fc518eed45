using System.Text.Json;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>
/// Issue 32's resume matrix on real processes with the LLaMA sample (fp32, AdamW, clipping, a warm-up LR schedule): a
/// run saves after <see cref="SaveAt"/> steps and trains on to <see cref="Steps"/>; the checkpoint resumes on another
/// (pipeline, tensor, data, ZeRO stage, offload) layout, with no conversion step, and the resumed steps follow the
/// uninterrupted run. Plain and pipeline models load each other's checkpoints through the names the pipeline records.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public sealed class LlamaResumeMatrixTests(ITestOutputHelper output) : IDisposable
{
    private const int SaveAt = 4, Steps = 24;
    private const string Model = "--d-model 64 --layers 4 --heads 4 --kv-heads 4 --seq 32";
    private readonly string dir = Directory.CreateTempSubdirectory("dss-llama-resume").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>The DeepSpeed config of a layout: <paramref name="zero"/> is its zero_optimization body.</summary>
    private static string Config(int micro, string zero) => $$"""
        { "train_batch_size": 8, "train_micro_batch_size_per_gpu": {{micro}}, "steps_per_print": 1000, "gradient_clipping": 0.5,
          "optimizer": { "type": "AdamW", "params": { "lr": 2e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01 } },
          "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 2e-3, "warmup_num_steps": 10 } },
          "zero_optimization": { {{zero}} } }
        """;

    private SortedDictionary<int, double> Run(string name, int ranks, string config, string args, string sample = "Llama.dll", string model = Model)
    {
        var runDir = Directory.CreateDirectory(Path.Combine(dir, name)).FullName;
        File.WriteAllText(Path.Combine(runDir, "ds.json"), config);
        var (code, stdout, stderr) = SampleProcess.Run(sample, ranks, $"{model} --steps {Steps} --deepspeed_config ds.json --loss-log loss.jsonl {args}", runDir);
        Assert.True(code == 0, $"{name} exited with {code}:\n{stdout}{stderr}");
        var losses = new SortedDictionary<int, double>();
        foreach (var line in File.ReadAllLines(Path.Combine(runDir, "loss.jsonl")))
        {
            var e = JsonDocument.Parse(line).RootElement;
            losses[e.GetProperty("step").GetInt32()] = e.GetProperty("loss").GetDouble();
        }
        return losses;
    }

    [Theory]
    [InlineData("dp2-z1_pp2-z0", 2, 4, "\"stage\": 1", "", 2, 2, "\"stage\": 0", "--pipeline-model-parallel-size 2")]
    [InlineData("tp2dp2-z2_pp2tp2-z1", 4, 2, "\"stage\": 2", "--tensor-model-parallel-size 2", 4, 2, "\"stage\": 1", "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2")]
    [InlineData("pp2dp2-z1_dp4-z3", 4, 2, "\"stage\": 1", "--pipeline-model-parallel-size 2", 4, 2, "\"stage\": 3, \"stage3_param_persistence_threshold\": 0", "")]
    [InlineData("tp2sp_one-offload", 2, 8, "\"stage\": 0", "--tensor-model-parallel-size 2 --sequence-parallel", 1, 8, "\"stage\": 2, \"offload_optimizer\": { \"device\": \"cpu\" }", "")]
    [InlineData("pp2tp2dp2_tp4dp2", 8, 2, "\"stage\": 1", "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2", 8, 2, "\"stage\": 2", "--tensor-model-parallel-size 4")]
    public void ACheckpointResumesOnAnotherLayoutAndFollowsTheUninterruptedRun(string name, int savingRanks, int savingMicro, string savingZero, string savingArgs,
        int resumingRanks, int resumingMicro, string resumingZero, string resumingArgs)
    {
        var ckpt = Path.Combine(dir, "ckpt");
        var uninterrupted = Run($"{name}-save", savingRanks, Config(savingMicro, savingZero), $"{savingArgs} --save-dir {ckpt} --save-every {SaveAt}");
        var resumed = Run($"{name}-resume", resumingRanks, Config(resumingMicro, resumingZero), $"{resumingArgs} --resume {Path.Combine(ckpt, $"global_step{SaveAt}")}");
        Assert.Equal(Enumerable.Range(SaveAt + 1, Steps - SaveAt), resumed.Keys);
        double worst = resumed.Max(kv => Math.Abs(kv.Value - uninterrupted[kv.Key]));
        output.WriteLine($"{name}: steps {SaveAt + 1}-{Steps} after resuming, largest difference from the uninterrupted run {worst:E2} " +
                         $"(loss {uninterrupted[SaveAt + 1]:F5} → {uninterrupted[Steps]:F5})");
        Assert.True(worst <= 1e-6, $"{name}: {worst:E2}");
    }

    /// <summary>The GPT sample ties its embedding and LM head: one parameter in the plain model, <c>tied_modules.*</c> saved by both end stages of the pipeline.</summary>
    [Theory]
    [InlineData("gpt-pp2_dp2", "--pipeline-model-parallel-size 2", "")]
    [InlineData("gpt-dp2_pp2", "", "--pipeline-model-parallel-size 2")]
    public void ATiedWeightResumesBetweenPlainAndPipelineModels(string name, string saving, string resuming)
    {
        const string gpt = "--vocab 64 --d-model 32 --layers 2 --heads 2 --seq 16";
        var ckpt = Path.Combine(dir, "ckpt");
        var uninterrupted = Run($"{name}-save", 2, Config(2, "\"stage\": 1"), $"{saving} --save-dir {ckpt} --save-every {SaveAt}", "Gpt.dll", gpt);
        var resumed = Run($"{name}-resume", 2, Config(2, "\"stage\": 1"), $"{resuming} --resume {Path.Combine(ckpt, $"global_step{SaveAt}")}", "Gpt.dll", gpt);
        Assert.Equal(Enumerable.Range(SaveAt + 1, Steps - SaveAt), resumed.Keys);
        double worst = resumed.Max(kv => Math.Abs(kv.Value - uninterrupted[kv.Key]));
        output.WriteLine($"{name}: largest difference from the uninterrupted run {worst:E2}");
        Assert.True(worst <= 1e-6, $"{name}: {worst:E2}");
    }

    /// <summary>
    /// With dropout at tensor size 2 both RNG streams matter: the default one (residual dropout, the same on every
    /// rank) and the tensor rank's model-parallel one (attention dropout on its heads). On the saving layout the resumed
    /// run is the uninterrupted one, bit for bit.
    /// </summary>
    [Fact]
    public void WithDropoutTheSavingLayoutResumesBitIdentically()
    {
        var ckpt = Path.Combine(dir, "ckpt");
        const string args = "--tensor-model-parallel-size 2 --dropout 0.1";
        var uninterrupted = Run("dropout-save", 2, Config(4, "\"stage\": 1"), $"{args} --save-dir {ckpt} --save-every {SaveAt}");
        var resumed = Run("dropout-resume", 2, Config(4, "\"stage\": 1"), $"{args} --resume {Path.Combine(ckpt, $"global_step{SaveAt}")}");
        Assert.Equal(uninterrupted.Where(kv => kv.Key > SaveAt), resumed);
    }

    /// <summary>
    /// Precision is part of the layout too: the checkpoint holds fp32 values and moments, so an fp32 run resumes in bf16
    /// (with ZeRO-2) and a bf16 run in fp32: the first resumed step is the uninterrupted run's within bf16's rounding (a
    /// fresh start would be ~0.3 away), and the curves then part only as two precisions do.
    /// </summary>
    [Theory]
    [InlineData("fp32_bf16", "", "\"stage\": 1", "\"bf16\": { \"enabled\": true }, ", "\"stage\": 2")]
    [InlineData("bf16_fp32", "\"bf16\": { \"enabled\": true }, ", "\"stage\": 2", "", "\"stage\": 1")]
    public void APrecisionChangeResumes(string name, string savingPrecision, string savingZero, string resumingPrecision, string resumingZero)
    {
        var ckpt = Path.Combine(dir, "ckpt");
        var uninterrupted = Run($"{name}-save", 2, Config(4, savingZero).Replace("\"gradient_clipping\"", savingPrecision + "\"gradient_clipping\""),
            $"--save-dir {ckpt} --save-every {SaveAt}");
        var resumed = Run($"{name}-resume", 2, Config(4, resumingZero).Replace("\"gradient_clipping\"", resumingPrecision + "\"gradient_clipping\""),
            $"--resume {Path.Combine(ckpt, $"global_step{SaveAt}")}");
        Assert.Equal(Enumerable.Range(SaveAt + 1, Steps - SaveAt), resumed.Keys);
        double first = Math.Abs(resumed[SaveAt + 1] - uninterrupted[SaveAt + 1]), worst = resumed.Max(kv => Math.Abs(kv.Value - uninterrupted[kv.Key]));
        output.WriteLine($"{name}: difference from the uninterrupted run at step {SaveAt + 1} {first:E2}, over {Steps - SaveAt} steps {worst:E2}");
        Assert.True(first <= 2e-3, $"{name}: step {SaveAt + 1} {first:E2}");
        Assert.True(worst <= 2e-2, $"{name}: {worst:E2}"); // the two precisions' curves part slowly
    }
}
