using System.Diagnostics;
using DeepSpeedSharp.Cli.Commands;

using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Config;

[Trait("Tier", "Full")]
public sealed class ConfigCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dss-validate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = new ValidateConfigCommand().Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void ValidFilePrintsOkWithSummaryAndWarnings()
    {
        var f = Write("ok.json", """{"train_batch_size": 16, "gradient_accumulation_steps": 2, "zero_optimization": {"stage": 2, "cpu_offload": true}, "bf16": {"enabled": true}}""");
        var (code, stdout, _) = Run(f, "--world-size", "4");
        Assert.Equal(0, code);
        Assert.Contains($"{f}: ok: train_batch_size=16 micro_batch_per_gpu=2 gradient_accumulation_steps=2 at world size 4; data parallel 4 = 4 ranks; ZeRO stage 2; precision bf16; offload optimizer=cpu param=none", stdout);
        Assert.Contains($"{f}: warning: 'zero_optimization.cpu_offload' is deprecated", stdout);
    }

    [Fact]
    public void PipelineStagesSplitTheWorldAndZero2IsAcceptedWithThemZero3IsNot()
    {
        var zero2 = Write("pipe2.json", """{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 2, "pipeline": {"stages": 2}, "zero_optimization": {"stage": 2}}""");
        var (code, stdout, _) = Run(zero2, "--world-size", "4");
        Assert.Equal(0, code);
        // 4 ranks as 2 stages × 2 data-parallel ranks: 16 = 2 × gas × 2, so gas 4 (not 2, as if all 4 ranks were data parallel).
        Assert.Contains($"{zero2}: ok: train_batch_size=16 micro_batch_per_gpu=2 gradient_accumulation_steps=4 at world size 4; " +
                        "pipeline 2 stages × data parallel 2 = 4 ranks; ZeRO stage 2; precision fp32; no offload", stdout);
        // The layout from flags: 8 ranks as 2 stages × 2 tensor × 2 data: 16 = 2 × gas × 2 again.
        (code, stdout, _) = Run(zero2, "--world-size", "8", "--pipeline", "2", "--tensor", "2");
        Assert.Equal(0, code);
        Assert.Contains("gradient_accumulation_steps=4 at world size 8; pipeline 2 stages × tensor 2 × data parallel 2 = 8 ranks; ZeRO stage 2", stdout);
        (code, stdout, _) = Run(zero2, "--world-size", "4", "--pipeline", "4");
        Assert.Equal(1, code);
        Assert.Contains("pipeline.stages is 2 in the config, but --pipeline is 4; set pipeline.stages to 4 or \"auto\"", stdout);
        var zero3 = Write("pipe3.json", """{"train_batch_size": 16, "pipeline": {"stages": 2}, "zero_optimization": {"stage": 3}}""");
        (code, stdout, _) = Run(zero3, "--world-size", "4");
        Assert.Equal(1, code);
        Assert.Contains("zero_optimization.stage 3 cannot be combined with pipeline parallelism (pipeline.stages is 2), as in DeepSpeed; use ZeRO stage 0, 1 or 2", stdout);
    }

    [Fact]
    public void InvalidFilesGiveErrorLinesAndExitCode1()
    {
        var good = Write("good.json", """{"train_batch_size": 8}""");
        var stage = Write("stage.json", """{"train_batch_size": 8, "zero_optimization": {"stage": "two"}}""");
        var mismatch = Write("mismatch.json", """{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 8}""");
        var empty = Write("empty.json", "");
        var binary = Path.Combine(_dir, "binary.json");
        File.WriteAllBytes(binary, [0, 1, 2, 0xff, 0xfe, 0x80]);
        var huge = Write("huge.json", """{"train_batch_size": 1e400}""");
        var missing = Path.Combine(_dir, "missing.json");
        var (code, stdout, _) = Run(good, stage, mismatch, empty, binary, huge, missing, _dir);
        Assert.Equal(1, code);
        Assert.Contains($"{good}: ok:", stdout);
        Assert.Contains($"{stage}: error: zero_optimization.stage: expected a ZeRO stage: 0, 1, 2 or 3, got a string \"two\"", stdout);
        Assert.Contains($"{mismatch}: error: train_batch_size (16) != train_micro_batch_size_per_gpu (1) × gradient_accumulation_steps (8) × data-parallel world size (1)", stdout);
        Assert.Contains($"{empty}: error: the config is empty", stdout);
        Assert.Contains($"{binary}: error: not valid JSON", stdout);
        Assert.Contains($"{huge}: error: train_batch_size", stdout);
        Assert.Contains($"{missing}: error: cannot read config file", stdout);
        Assert.Contains($"{_dir}: error: '{_dir}' is a directory", stdout);
        Assert.DoesNotContain("   at ", stdout); // no stack traces
    }

    /// <summary>Issue 33 item 7: a 1 MB value is not echoed; the message shows its start and its length.</summary>
    [Fact]
    public void AHugeValueIsShownCutWithItsLength()
    {
        var f = Write("huge.json", "{\"train_batch_size\": 8, \"optimizer\": {\"type\": \"" + new string('x', 1_000_000) + "\"}}");
        var (code, stdout, _) = Run(f);
        Assert.Equal(1, code);
        Assert.Contains($"{f}: error: optimizer.type '{new string('x', 63)}… (1000002 characters) is not an optimizer", stdout);
        Assert.True(stdout.Length < 600, $"{stdout.Length} characters printed");
    }

    [Fact]
    public void AutoBatchSizesAreReportedAsProgramSupplied()
    {
        var f = Write("auto.json", """{"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "zero_optimization": {"stage": 3}}""");
        var (code, stdout, _) = Run(f);
        Assert.Equal(0, code);
        Assert.Contains("batch sizes \"auto\" (must be passed by the program); data parallel 1 = 1 rank; ZeRO stage 3", stdout);
    }

    [Theory]
    [InlineData(new string[0], "no config files given")]
    [InlineData(new[] { "x.json", "--world-size" }, "--world-size needs a positive integer")]
    [InlineData(new[] { "x.json", "--world-size", "0" }, "--world-size needs a positive integer, got '0'")]
    [InlineData(new[] { "x.json", "--world-size=abc" }, "got 'abc'")]
    [InlineData(new[] { "x.json", "--wrld-size", "2" }, "unknown option '--wrld-size'")]
    public void UsageErrorsExitWith2(string[] args, string expected)
    {
        var (code, _, stderr) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
    }

    [Fact]
    public void DssProcessReturnsTheExitCodes()
    {
        var good = Write("good.json", """{"train_micro_batch_size_per_gpu": 2}""");
        var bad = Write("bad.json", """{"zero_optimization": {"stage3_param_persitence_threshold": 1}}""");
        var dss = Path.Combine(AppContext.BaseDirectory, "dss.dll");
        (int, string) Dss(params string[] args)
        {
            var run = ChildProcess.Run("dotnet", [dss, "validate-config", .. args], timeout: TimeSpan.FromSeconds(60));
            Assert.False(run.TimedOut, "dss did not exit");
            return (run.ExitCode, run.Stdout);
        }
        var (okCode, okOut) = Dss(good, "--world-size", "3");
        Assert.Equal(0, okCode);
        Assert.Contains("train_batch_size=6 micro_batch_per_gpu=2 gradient_accumulation_steps=1 at world size 3", okOut);
        var (badCode, badOut) = Dss(good, bad);
        Assert.Equal(1, badCode);
        Assert.Contains("did you mean 'stage3_param_persistence_threshold'?", badOut);
        Assert.Equal(2, Dss().Item1);
    }
}
