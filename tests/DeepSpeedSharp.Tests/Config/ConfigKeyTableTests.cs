using DeepSpeedSharp.Config.Keys;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Config;
using static DeepSpeedSharp.Tests.Config.ConfigTestHelpers;

namespace DeepSpeedSharp.Tests.Config;

/// <summary>
/// The key table (<see cref="ConfigKeyTable"/>) against the schema, the source and the docs: every key the reader
/// accepts is classified, every "implemented" key is read outside <c>Config/</c>, and docs/config.md carries the
/// generated table.
/// </summary>
public sealed class ConfigKeyTableTests
{
    /// <summary>Implemented keys whose config property is not the key in PascalCase, or which act inside Config/ (the
    /// batch arithmetic, cross-field checks), with the identifier that must appear outside Config/.</summary>
    private static readonly Dictionary<string, string?> ReaderOf = new()
    {
        ["train_batch_size"] = "TrainBatchSize",
        ["train_micro_batch_size_per_gpu"] = "MicroBatchPerGpu",
        ["gradient_accumulation_steps"] = "GradientAccumulationSteps",
        ["zero_optimization.offload_optimizer.device"] = "OffloadOptimizer.Enabled",
        ["zero_optimization.offload_param.device"] = "OffloadParam.Enabled",
        ["optimizer.type"] = "Type",
        ["optimizer.params.betas"] = "Beta1",
        ["optimizer.params.max_grad_norm"] = null, // warned about inside the reader, as DeepSpeed does
        ["scheduler.type"] = "Type",
        ["timers.throughput.enabled"] = "ThroughputEnabled",
        ["zero_optimization.stage3_gather_16bit_weights_on_model_save"] = "Stage3Gather16BitWeightsOnModelSave",
        ["flops_profiler.enabled"] = "FlopsProfiler.Enabled",
        ["comms_logger.enabled"] = "Enabled",
        ["tensorboard.enabled"] = "Tensorboard",
        ["csv_monitor.enabled"] = "CsvMonitor",
    };

    [Fact]
    public void EverySchemaKeyIsClassified()
    {
        var missing = DeepSpeedConfig.SchemaKeyPaths().Where(k => ConfigKeyTable.Find(k) is null).ToList();
        Assert.True(missing.Count == 0, "keys the reader accepts but the key table does not classify (add them to ConfigKeyTable):\n" + string.Join("\n", missing));
    }

    [Fact]
    public void TableRowsWithoutAFieldAreKnownKeysThatAreNeverImplemented()
    {
        var schema = DeepSpeedConfig.SchemaKeyPaths().ToHashSet();
        var fieldless = ConfigKeyTable.All.Where(e => !schema.Contains(e.Key)).ToList();
        Assert.NotEmpty(fieldless); // amp, autotuning, zeropp_loco_param, ...
        Assert.All(fieldless, e => Assert.NotEqual(KeyEffectKind.Implemented, e.Kind));
        Assert.All(ConfigKeyTable.All, e => Assert.False(string.IsNullOrWhiteSpace(e.Note), e.Key));
    }

    [Fact]
    public void EveryImplementedKeyIsReadOutsideTheConfigFolder()
    {
        var root = RepoRoot();
        Assert.NotNull(root);
        var src = Path.Combine(root!, "src");
        var text = string.Join("\n", Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}Config{Path.DirectorySeparatorChar}")
                        && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .Select(File.ReadAllText));
        var unread = new List<string>();
        foreach (var e in ConfigKeyTable.All.Where(e => e.Kind == KeyEffectKind.Implemented))
        {
            if (ReaderOf.TryGetValue(e.Key, out var reader) && reader is null) continue;
            reader ??= Pascal(e.Key[(e.Key.LastIndexOf('.') + 1)..]);
            if (!Regex.IsMatch(text, @"\." + Regex.Escape(reader) + @"\b")) unread.Add($"{e.Key} (looked for '.{reader}')");
        }
        Assert.True(unread.Count == 0, "keys the table calls implemented that nothing outside Config/ reads:\n" + string.Join("\n", unread));
    }

    [Fact]
    public void DocsCarryTheGeneratedTable()
    {
        var root = RepoRoot();
        Assert.NotNull(root);
        var doc = File.ReadAllText(Path.Combine(root!, "docs", "config.md")).ReplaceLineEndings("\n");
        const string begin = "<!-- key-table:begin (generated from ConfigKeyTable; do not edit by hand) -->\n";
        const string end = "<!-- key-table:end -->";
        int b = doc.IndexOf(begin, StringComparison.Ordinal), e = doc.IndexOf(end, StringComparison.Ordinal);
        Assert.True(b >= 0 && e > b, "docs/config.md lacks the key-table markers");
        var expected = ConfigKeyTable.ToMarkdown().ReplaceLineEndings("\n");
        var actual = doc[(b + begin.Length)..e];
        if (actual != expected)
        {
            var fresh = Path.Combine(Path.GetTempPath(), "config-key-table.md");
            File.WriteAllText(fresh, expected);
            Assert.Fail($"docs/config.md's key table is out of date: replace the text between the markers with {fresh}");
        }
    }

    [Fact]
    public void ValidateConfigListsKeysWithoutEffectAndStrictMakesThemErrors()
    {
        var file = Path.Combine(Path.GetTempPath(), $"noeffect-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """{"train_batch_size": 8, "wandb": {"enabled": true}, "zero_optimization": {"stage": 2, "round_robin_gradients": true}}""");
        try
        {
            var cmd = new DeepSpeedSharp.Cli.Commands.ValidateConfigCommand();
            var (o1, e1) = (new StringWriter(), new StringWriter());
            Assert.Equal(0, cmd.Run([file], o1, e1));
            var lines = o1.ToString().ReplaceLineEndings("\n").TrimEnd().Split('\n');
            Assert.StartsWith($"{file}: ok: ", lines[0]);
            Assert.Equal($"{file}: no effect: wandb.enabled: Weights & Biases has no .NET client; use tensorboard or csv_monitor", lines[1]);
            Assert.StartsWith($"{file}: no effect: zero_optimization.round_robin_gradients: ", lines[2]);
            Assert.Equal(3, lines.Length);

            var (o2, e2) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, cmd.Run([file, "--strict"], o2, e2));
            var errors = o2.ToString().ReplaceLineEndings("\n").TrimEnd().Split('\n');
            Assert.Equal(2, errors.Length);
            Assert.StartsWith($"{file}: error: 'wandb.enabled' has no effect in DeepSpeedSharp (--strict): ", errors[0]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string Pascal(string snake) =>
        string.Concat(snake.Split('_').Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));
}
