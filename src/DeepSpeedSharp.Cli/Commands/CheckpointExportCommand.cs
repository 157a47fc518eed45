using System.CommandLine;
using System.Globalization;
using DeepSpeedSharp.Checkpoint;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss checkpoint export DIR [--tag T] --out model.safetensors [--dtype fp32|bf16|fp16]` consolidates a checkpoint
/// of any world size and stage into one file under the model's parameter names (<see cref="CheckpointExport"/>);
/// `--format hf --out OUTDIR [--max-shard-size 5GB]` writes a Hugging Face model directory instead
/// (<see cref="HuggingFaceExport"/>). Neither needs libtorch.
/// </summary>
public sealed class CheckpointExportCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "checkpoint export";

    /// <inheritdoc />
    public override string Summary => "DIR --out FILE|OUTDIR [--format safetensors|hf] [--dtype D]: consolidate a checkpoint into safetensors weights";

    /// <inheritdoc />
    public override Command CreateCommand()
    {
        var dir = CliOptions.CheckpointDirectory();
        var tag = CliOptions.Text("--tag", "TAG", "the tag (sub-directory) to export (default: the one 'latest' names)");
        var output = CliOptions.Text("--out", "FILE|OUTDIR", "the .safetensors file to write, or with --format hf the new (or empty) directory (required)");
        var format = CliOptions.Choice("--format", "safetensors|hf",
            "safetensors: one file; hf: a Hugging Face model directory (model.safetensors or model-0000K-of-0000N.safetensors shards with " +
            "model.safetensors.index.json, and DIR's config.json with torch_dtype set, when DIR has one)", "safetensors", ["safetensors", "hf"]);
        var maxShardSize = CliOptions.Value<long?>("--max-shard-size", "SIZE",
            "with --format hf: the largest shard, as transformers' max_shard_size (5GB, 500MB, 100KB, 2GiB or bytes; default 5GB)",
            (string s, out long? v) => (v = HuggingFaceShards.ParseSize(s)) != null, HuggingFaceShards.SizeRequirement, null);
        var dtype = CliOptions.Choice("--dtype", "fp32|bf16|fp16", "element type of the exported tensors (float32, bfloat16 and float16 are accepted too)",
            "fp32", ["fp32", "float32", "bf16", "bfloat16", "fp16", "float16"]);
        var command = new Command("export", "Consolidate a checkpoint of any world size, ZeRO stage, tensor- and pipeline-parallel layout into " +
                                            "safetensors weights under the model's parameter names: one file, or a Hugging Face model directory " +
                                            "(--format hf). Reads the checkpoint as bytes: runs from the installed tool, without libtorch.")
        {
            dir, tag, output, format, maxShardSize, dtype,
        };
        command.SetAction(r =>
        {
            var outPath = r.GetValue(output) ?? throw Usage("--out FILE is required (with --format hf: --out OUTDIR)");
            var shardSize = r.GetValue(maxShardSize);
            var stdout = r.InvocationConfiguration.Output;
            if (r.GetValue(format) == "hf")
                return ExportHuggingFace(r.GetValue(dir)!, r.GetValue(tag), outPath, r.GetValue(dtype)!, shardSize ?? HuggingFaceShards.DefaultMaxShardBytes, stdout);
            if (shardSize != null) throw Usage("--max-shard-size applies to --format hf only");
            return Export(r.GetValue(dir)!, r.GetValue(tag), outPath, r.GetValue(dtype)!, stdout);
        });
        return command;
    }

    private static ScalarType Dtype(string name) => name switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => ScalarType.Float16,
    };

    private static int Export(string dir, string? tag, string output, string dtypeName, TextWriter stdout)
    {
        var s = CheckpointExport.Export(dir, tag, output, Dtype(dtypeName));
        stdout.WriteLine($"exported {s.Tensors} tensors ({s.Elements:N0} elements, {dtypeName}) from {s.TagDirectory} to {output} ({s.Bytes:N0} bytes)");
        return 0;
    }

    private static int ExportHuggingFace(string dir, string? tag, string output, string dtypeName, long maxShardBytes, TextWriter stdout)
    {
        var dtype = Dtype(dtypeName);
        var s = HuggingFaceExport.Export(dir, tag, output, dtype, maxShardBytes);
        string files = s.Files.Count == 1 ? s.Files[0] : $"{s.Files.Count} shards {s.Files[0]} … {s.Files[^1]} and {HuggingFaceShards.IndexFile}";
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"exported {s.Tensors} tensors ({s.Elements:N0} elements, {dtypeName}, {s.TotalSize:N0} bytes) from {s.TagDirectory} to {output}: {files}"));
        stdout.WriteLine(s.ConfigSource != null
            ? $"config.json: copied from {s.ConfigSource} with torch_dtype \"{HuggingFaceExport.TorchDtypeName(dtype)}\""
            : $"no config.json in {dir}: {output} holds the weights only (put the model's Hugging Face config.json there to load it with from_pretrained)");
        return 0;
    }
}
