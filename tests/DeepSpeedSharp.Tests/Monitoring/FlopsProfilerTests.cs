using DeepSpeedSharp.Profiling;
using DeepSpeedSharp.Samples.Gpt.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Monitoring;

public class FlopsProfilerTests
{
    /// <summary>Self-attention like the sample's: fused QKV Linear, q·kᵀ and att·v with matmul, output Linear.</summary>
    private sealed class TestAttention : nn.Module<Tensor, Tensor>
    {
        private readonly Linear c_attn;
        private readonly Linear c_proj;
        public readonly int Heads;

        public TestAttention(int dModel, int heads) : base(nameof(TestAttention))
        {
            Heads = heads;
            c_attn = nn.Linear(dModel, 3 * dModel);
            c_proj = nn.Linear(dModel, dModel);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            long b = x.shape[0], t = x.shape[1], c = x.shape[2], hd = c / Heads;
            var qkv = c_attn.call(x).split(c, dim: 2);
            var q = qkv[0].view(b, t, Heads, hd).transpose(1, 2);
            var k = qkv[1].view(b, t, Heads, hd).transpose(1, 2);
            var v = qkv[2].view(b, t, Heads, hd).transpose(1, 2);
            var att = q.matmul(k.transpose(-2, -1)).mul(1.0 / Math.Sqrt(hd)).softmax(-1);
            return c_proj.call(att.matmul(v).transpose(1, 2).contiguous().view(b, t, c)).MoveToOuterDisposeScope();
        }
    }

    [Fact]
    public void LinearAndActivationCountsMatchHandComputedValues()
    {
        var model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3));
        using var profiler = new FlopsProfiler(model);
        profiler.StartProfile();
        using (no_grad()) model.call(ones(4, 6)).Dispose();
        profiler.StopProfile();
        // Linear 6→16 on 4 rows: 4·6·16 = 384 MACs; Linear 16→3: 4·16·3 = 192 MACs; tanh: 4·16 = 64 FLOPs.
        Assert.Equal(384 + 192, profiler.GetTotalMacs());
        Assert.Equal(2 * (384 + 192) + 64, profiler.GetTotalFlops());
        Assert.Equal(6 * 16 + 16 + 16 * 3 + 3, profiler.GetTotalParams());
        var root = profiler.GetProfile();
        Assert.Equal(new long[] { 384, 0, 192 }, root.Children.Select(c => c.Macs));
        Assert.All(root.Flatten(), m => Assert.Equal(1, m.Calls));
        Assert.True(root.Latency > TimeSpan.Zero);

        // Hooks are gone after StopProfile: another forward changes nothing.
        using (no_grad()) model.call(ones(4, 6)).Dispose();
        Assert.Equal(384 + 192, profiler.GetTotalMacs());
        Assert.All(root.Flatten(), m => Assert.Equal(1, m.Calls));
    }

    [Fact]
    public void AttentionCountsMatchHandComputedValues()
    {
        // B=2, T=5, C=8, H=2 (head dim 4).
        var model = new TestAttention(8, 2);
        using var profiler = new FlopsProfiler(model);
        profiler.AddCounter<TestAttention>((m, x, _) => FlopsFormulas.SelfAttentionCore(x.shape[0], x.shape[1], x.shape[2], m.Heads));
        profiler.StartProfile();
        using (no_grad()) model.call(randn(2, 5, 8)).Dispose();
        profiler.StopProfile();
        // c_attn: 2·5·8·24 = 1920; q·kᵀ: 2·2·5·5·4 = 400; att·v: 400; c_proj: 2·5·8·8 = 640.
        Assert.Equal(1920 + 400 + 400 + 640, profiler.GetTotalMacs());
        // 2 FLOPs per MAC, plus scaling and softmax over the 2·2·5·5 = 100 scores.
        Assert.Equal(2 * 3360 + 100 + 100, profiler.GetTotalFlops());
        var root = profiler.GetProfile();
        Assert.Equal(800, root.OwnCost.Macs);
        Assert.Equal(new[] { "c_attn", "c_proj" }, root.Children.Select(c => c.Name));
    }

    [Fact]
    public void SampleGptCountsMatchTheClosedForm()
    {
        var cfg = new GptConfig(Vocab: 64, DModel: 16, Layers: 2, Heads: 2, Seq: 8);
        torch.manual_seed(1);
        var model = new GptModel(cfg);
        using var profiler = new FlopsProfiler(model);
        profiler.AddCounter<CausalSelfAttention>((_, x, _) => FlopsFormulas.SelfAttentionCore(x.shape[0], x.shape[1], x.shape[2], cfg.Heads));
        profiler.StartProfile();
        using (no_grad()) model.call(zeros(3, 8, dtype: ScalarType.Int64)).Dispose();
        profiler.StopProfile();
        long n = 3 * 8, c = 16, t = 8;
        long perLayer = n * c * 3 * c + 2 * n * t * c + n * c * c + n * c * 4 * c + n * 4 * c * c;
        Assert.Equal(cfg.Layers * perLayer + n * c * cfg.Vocab, profiler.GetTotalMacs());
        // The MLP's GELU is a functional call inside Mlp: not counted without a counter for Mlp (as documented).
        long layerNorms = (2 * cfg.Layers + 1) * n * c * 5, scores = 3 * cfg.Heads * t * t;
        Assert.Equal(2 * profiler.GetTotalMacs() + layerNorms + cfg.Layers * 2 * scores, profiler.GetTotalFlops());
    }

    [Fact]
    public void ReportHonoursDepthTopModulesAndDetailed()
    {
        var model = nn.Sequential(("enc", nn.Sequential(nn.Linear(4, 4), nn.ReLU())), ("head", nn.Linear(4, 2)));
        using var profiler = new FlopsProfiler(model);
        profiler.StartProfile();
        using (no_grad()) model.call(ones(1, 4)).Dispose();
        profiler.StopProfile();
        var run = new FlopsRunInfo(Step: 3, WorldSize: 1, DataParallelSize: 1, SamplesPerRank: 1, IterLatency: TimeSpan.FromMilliseconds(10),
            PeakFlopsPerRank: 1e6);
        var full = FlopsReport.Format(profiler.GetProfile(), run, new FlopsReportOptions(-1, 2, true));
        Assert.Contains("Profile Summary at step 3:", full);
        Assert.Contains("fwd MACs per rank:", full);
        Assert.Contains("24 MACs", full); // 16 + 8
        // Model FLOPS = 3 · (48 + 4) FLOPs / 10 ms = 15.6 KFLOPS; MFU against 1 MFLOPS = 1.56%.
        Assert.Contains("15.6 KFLOPS", full);
        Assert.Contains("1.56% of 1 MFLOPS", full);
        Assert.Contains("depth 2:", full);
        Assert.Contains("(enc): Sequential(", full);
        Assert.Contains("'Linear': '16 MACs'", full);
        var shallow = FlopsReport.Format(profiler.GetProfile(), run, new FlopsReportOptions(1, 1, true));
        Assert.DoesNotContain("depth 2:", shallow);
        Assert.Contains("(enc): Sequential(", shallow);
        Assert.DoesNotContain("(0): Linear(", shallow);
        var summaryOnly = FlopsReport.Format(profiler.GetProfile(), run, new FlopsReportOptions(-1, 0, false));
        Assert.DoesNotContain("Aggregated", summaryOnly);
        Assert.DoesNotContain("Detailed", summaryOnly);
    }

    [Fact]
    public void EngineProfilesTheConfiguredStepAndWritesTheOutputFile()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("dss-flops").FullName, "flops.txt");
        var (engine, _) = MonitorTests.Train(
            $"\"flops_profiler\": {{\"enabled\": true, \"profile_step\": 2, \"module_depth\": -1, \"top_modules\": 1, \"detailed\": true, \"output_file\": \"{file}\"}}", steps: 4);
        var text = File.ReadAllText(file);
        Assert.Equal(engine.LastFlopsReport, text);
        Assert.Contains("Profile Summary at step 2:", text);
        // One forward of micro-batch 4: 4·6·16 + 4·16·3 = 576 MACs (steps 1 and 3 are not counted).
        Assert.Contains("576 MACs", text);
        Assert.Contains("iter latency:", text);
        Assert.False(engine.FlopsProfiler!.Started);
    }
}
