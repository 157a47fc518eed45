using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpoint;

/// <summary>
/// A manifest edited after the save is refused by loading and by <c>dss checkpoint inspect</c>, naming the file, the
/// field and both values; every parse error names the file and the field; unedited checkpoints, and checkpoints saved
/// before the manifest was sealed, still load.
/// </summary>
[Collection(Infrastructure.GlobalRngCollection.Name)]
public sealed class CheckpointManifestEditTests
{
    private const string Config = """
        { "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1,
          "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
          "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.01, "warmup_num_steps": 4 } },
          "zero_optimization": { "stage": 1 } }
        """;

    private static DeepSpeedEngine Build(int seed)
    {
        torch.manual_seed(seed);
        var model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3));
        return DeepSpeed.Initialize(model, config: Config, seed: 7).Engine;
    }

    private static void Train(DeepSpeedEngine e, int steps)
    {
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var g = new Generator((ulong)(100 + s));
            var loss = nn.functional.mse_loss(e.Forward(randn(4, 6, generator: g)), randn(4, 3, generator: g));
            e.Backward(loss);
            e.Step();
        }
    }

    /// <summary>A checkpoint of 2 steps; returns the checkpoint directory and the manifest's path.</summary>
    private static (string Dir, string Manifest) Saved()
    {
        var dir = Directory.CreateTempSubdirectory("dss-manifest").FullName;
        var e = Build(1);
        Train(e, 2);
        e.SaveCheckpoint(dir);
        return (dir, Path.Combine(dir, "global_step2", CheckpointManifest.FileName));
    }

    private static void Edit(string manifest, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(File.ReadAllText(manifest))!.AsObject();
        edit(node);
        File.WriteAllText(manifest, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Loading fails with an <see cref="InvalidDataException"/> and leaves the engine as it was; returns the message.</summary>
    private static string LoadFails(string dir)
    {
        var b = Build(2);
        var e = Assert.Throws<InvalidDataException>(() => b.LoadCheckpoint(dir));
        Assert.Equal(0, b.GlobalSteps);
        return e.Message;
    }

    private static string InspectFails(string dir)
    {
        var report = CheckpointInspector.Inspect(dir, null, out bool ok);
        Assert.False(ok, report);
        return report;
    }

    [Theory]
    [InlineData("global_steps", 9, "2")]
    [InlineData("global_samples", 1000, "8")]
    [InlineData("micro_steps", 3, "2")]
    public void AnEditedCounterIsRefusedNamingFileFieldAndBothValues(string field, long edited, string saved)
    {
        var (dir, manifest) = Saved();
        Edit(manifest, m => m[field] = edited);
        var expected = $"checkpoint manifest '{manifest}' was edited after the checkpoint was saved: field '{field}' is {edited}, " +
                       $"but the shard file 'zero_pp_rank_0_mp_rank_00_optim_states.safetensors' records {saved}";
        Assert.StartsWith(expected, LoadFails(dir));
        Assert.Contains($"ERROR {expected}", InspectFails(dir));
        var export = Path.Combine(dir, "model.safetensors");
        Assert.StartsWith(expected, Assert.Throws<InvalidDataException>(() => CheckpointExport.Export(dir, null, export, ScalarType.Float32)).Message);
        Assert.False(File.Exists(export));
    }

    [Fact]
    public void AnyOtherEditedFieldIsRefusedNamingFileAndField()
    {
        var (dir, manifest) = Saved();
        Edit(manifest, m => m["lr_scheduler"]!["last_batch_iteration"] = 0);
        var message = LoadFails(dir);
        Assert.StartsWith($"checkpoint manifest '{manifest}' was edited after the checkpoint was saved: field 'lr_scheduler' was changed", message);
        Assert.DoesNotContain('\n', message);
        Assert.Contains("field 'lr_scheduler' was changed", InspectFails(dir));
    }

    [Theory]
    [InlineData("global_steps", "\"7\"", "field 'global_steps': expected an integer, got a string \"7\"")]
    [InlineData("world_size", "true", "field 'world_size': expected an integer, got the boolean true")]
    [InlineData("files", "{}", "field 'files': expected a list, got an object")]
    public void AMistypedFieldNamesFileAndField(string field, string value, string expected)
    {
        var (dir, manifest) = Saved();
        Edit(manifest, m => m[field] = JsonNode.Parse(value));
        Assert.Equal($"checkpoint manifest '{manifest}': {expected}", LoadFails(dir));
        Assert.Contains($"ERROR checkpoint manifest '{manifest}': {expected}", InspectFails(dir));
    }

    [Fact]
    public void ANestedMistypedOrMissingFieldAndBadJsonNameTheField()
    {
        var (dir, manifest) = Saved();
        var original = File.ReadAllText(manifest);
        Edit(manifest, m => m["files"]![0]!["bytes"] = "many");
        Assert.Equal($"checkpoint manifest '{manifest}': field 'files[0].bytes': expected an integer, got a string \"many\"", LoadFails(dir));

        File.WriteAllText(manifest, original);
        Edit(manifest, m => m.Remove("global_samples"));
        Assert.Equal($"checkpoint manifest '{manifest}': field 'global_samples' is missing (an incomplete or hand-edited manifest)", LoadFails(dir));

        File.WriteAllText(manifest, original.Replace("\"global_steps\": 2,", "\"global_steps\": 2x,", StringComparison.Ordinal));
        Assert.StartsWith($"checkpoint manifest '{manifest}' is not valid JSON: field 'global_steps', line ", LoadFails(dir));
    }

    [Fact]
    public void AnUneditedOrReformattedManifestLoads()
    {
        var (dir, manifest) = Saved();
        Assert.Contains(ManifestIntegrity.DigestField, File.ReadAllText(manifest));
        CheckpointInspector.Inspect(dir, null, out bool ok);
        Assert.True(ok);
        Edit(manifest, _ => { }); // whitespace and indentation only
        var b = Build(2);
        b.LoadCheckpoint(dir);
        Assert.Equal(2, b.GlobalSteps);
    }

    /// <summary>
    /// What <c>jq -S .</c> or Python's <c>json.dump</c> do to a file — keys sorted, fractions in another notation
    /// (<c>0.01</c> as <c>1.0000000000000000E-002</c>, a learning rate of <c>0</c> as <c>0.0</c>) — is not an edit; a changed value still is.
    /// </summary>
    [Fact]
    public void ADifferentNumberTextOrKeyOrderIsNotAnEditButADifferentValueIs()
    {
        var (dir, manifest) = Saved();
        var original = File.ReadAllText(manifest);
        int rewritten = 0;
        JsonNode? Reformat(JsonNode? n) => n switch
        {
            JsonObject o => new JsonObject(o.OrderByDescending(p => p.Key, StringComparer.Ordinal)
                                            .Select(p => KeyValuePair.Create(p.Key, Reformat(p.Value))).ToList()),
            JsonArray a => new JsonArray(a.Select(Reformat).ToArray()),
            JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.ToJsonString() is var t && t.Contains('.') && ++rewritten > 0 =>
                JsonNode.Parse(double.Parse(t, System.Globalization.CultureInfo.InvariantCulture).ToString("E16", System.Globalization.CultureInfo.InvariantCulture)),
            _ => n?.DeepClone(),
        };
        var reformatted = Reformat(JsonNode.Parse(original))!;
        reformatted["config"]!["scheduler"]!["params"]!["warmup_min_lr"] = JsonNode.Parse("0.0");
        File.WriteAllText(manifest, reformatted.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Assert.True(rewritten >= 3, $"only {rewritten} numbers rewritten");
        Assert.Contains("1.0000000000000000E-002", File.ReadAllText(manifest));
        var b = Build(2);
        b.LoadCheckpoint(dir);
        Assert.Equal(2, b.GlobalSteps);
        CheckpointInspector.Inspect(dir, null, out bool ok);
        Assert.True(ok);

        File.WriteAllText(manifest, original.Replace("0.01", "0.0100001", StringComparison.Ordinal));
        Assert.Contains("field 'config' was changed", LoadFails(dir));
    }

    [Fact]
    public void ACheckpointSavedBeforeTheManifestWasSealedStillLoads()
    {
        var (dir, manifest) = Saved();
        var tagDir = Path.GetDirectoryName(manifest)!;
        // Make it look like an older build wrote it: no counters in the rank file, no field digests.
        Edit(manifest, m =>
        {
            m.Remove(ManifestIntegrity.DigestField);
            foreach (var f in m["files"]!.AsArray())
            {
                var path = Path.Combine(tagDir, f!["name"]!.GetValue<string>());
                var tensors = SafeTensors.Read(path, out var metadata);
                Assert.Equal("2", metadata["global_steps"]);
                SafeTensors.Write(path, tensors);
                foreach (var t in tensors.Values) t.Dispose();
                f["bytes"] = new FileInfo(path).Length;
                f["sha256"] = CheckpointManifest.Sha256Of(path);
            }
            m["global_steps"] = 5; // nothing left to check it against, as before
        });
        var b = Build(2);
        b.LoadCheckpoint(dir);
        Assert.Equal(5, b.GlobalSteps);
    }
}
