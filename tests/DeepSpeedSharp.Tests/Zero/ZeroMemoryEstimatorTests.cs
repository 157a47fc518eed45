using System.Globalization;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Cli.Commands;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Zero;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Zero;

/// <summary>
/// The model-state estimator (<see cref="ZeroMemoryEstimator"/>, <c>dss estimate</c>) against the bytes the engine
/// reports on rank 0 of a real 2-rank run of the sample GPT, for each stage and precision.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class ZeroMemoryEstimatorTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0, "")]
    [InlineData(1, "")]
    [InlineData(2, "")]
    [InlineData(3, "")]
    [InlineData(1, "\"bf16\": { \"enabled\": true },")]
    [InlineData(2, "\"bf16\": { \"enabled\": true, \"bf16_master_weights_and_grads\": true, \"bf16_optimizer_states\": true },")]
    [InlineData(3, "\"bf16\": { \"enabled\": true }, \"data_types\": { \"grad_accum_dtype\": \"fp32\" },")]
    public void EstimateIsWithinTenPercentOfTheMeasuredModelStates(int stage, string precision)
    {
        string json = $$"""
            { "train_batch_size": 16, "train_micro_batch_size_per_gpu": 4, "steps_per_print": 1000,
              "optimizer": { "type": "AdamW", "params": { "lr": 1e-3 } }, {{precision}}
              "zero_optimization": { "stage": {{stage}}, "stage3_param_persistence_threshold": 0 } }
            """;
        var run = GptRun.Train(2, json, steps: 2);
        long parameters = long.Parse(Regex.Match(run.Output, @"gpt: (\d+) parameters").Groups[1].Value, CultureInfo.InvariantCulture);
        // The largest parameter of GptRun.SmallModel (d 32): the MLP's 32 × 128 weight. It sizes stage 0's minimum bucket
        // and ZeRO-3's reduce-scatter buffers (whose largest unit, that Linear with its bias, is 4,224 elements).
        const long largestParameter = 32 * 128;
        var estimate = ZeroMemoryEstimator.PerRank(ZeroMemorySetup.FromConfig(DeepSpeedConfig.FromJson(json), parameters, largestParameter, ranks: 2));
        long measured = run.ParameterBytes + run.GradientBytes + run.OptimizerStateBytes;
        double error = Math.Abs(estimate.Total - measured) / (double)measured;
        output.WriteLine($"stage {stage} {precision}: {parameters} parameters, estimated {estimate.Total} B " +
                         $"({estimate.Parameters}/{estimate.Gradients}/{estimate.OptimizerState}), measured {measured} B " +
                         $"({run.ParameterBytes}/{run.GradientBytes}/{run.OptimizerStateBytes}): {100 * error:F2} % off");
        Assert.True(error <= 0.10, $"estimate {estimate.Total} vs measured {measured}: {100 * error:F1} % off");
    }

    [Fact]
    public void CommandPrintsEveryStageAndOffloadChoice()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, new EstimateCommand().Run(["--params", "52555776", "--ranks", "2"], o, e));
        var rows = o.ToString().Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length > 10 && c[0] is "0" or "1" or "2" or "3").ToList();
        Assert.Equal(8, rows.Count); // stage 0: none; 1 and 2: none, optimizer; 3: none, optimizer, optimizer+param
        Assert.Equal(["0", "none", "0.210", "GB", "0.420", "GB", "0.420", "GB", "1.051", "GB", "0.000", "GB", "2.102", "GB"], rows[0]);
        // Stage 3 total per rank: 1/2 of master, gradient and moments (0.420 GB), plus one reduce bucket for the whole
        // model, which fits in the default reduce_bucket_size: 4 B × 26.3 M × (2 ranks packed + 1 received) = 0.315 GB.
        Assert.Equal("0.736", rows[5][8]);
        Assert.Equal("optimizer+param", rows[7][1]);
        Assert.Equal(2, new EstimateCommand().Run(["--ranks", "2"], o, e));
        Assert.Contains("give exactly one of --params N or --model", e.ToString());
        Assert.Equal(2, new EstimateCommand().Run(["--params", "1M", "--stage", "5"], o, e));
    }
}
