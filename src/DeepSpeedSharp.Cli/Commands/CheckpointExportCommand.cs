using System.CommandLine;
using DeepSpeedSharp.Checkpoint;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss checkpoint export DIR [--tag T] --out model.safetensors [--dtype fp32|bf16|fp16]` consolidates a checkpoint
/// of any world size and stage into one file under the model's parameter names (<see cref="CheckpointExport"/>).
/// </summary>
public sealed class CheckpointExportCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "checkpoint export";

    /// <inheritdoc />
    public override string Summary => "DIR --out FILE [--tag T] [--dtype D]: consolidate a checkpoint into one safetensors file";

    /// <inheritdoc />
    public override Command CreateCommand()
    {
        var dir = CliOptions.CheckpointDirectory();
        var tag = CliOptions.Text("--tag", "TAG", "the tag (sub-directory) to export (default: the one 'latest' names)");
        var output = CliOptions.Text("--out", "FILE", "the .safetensors file to write (required)");
        var dtype = CliOptions.Choice("--dtype", "fp32|bf16|fp16", "element type of the exported tensors (float32, bfloat16 and float16 are accepted too)",
            "fp32", ["fp32", "float32", "bf16", "bfloat16", "fp16", "float16"]);
        var command = new Command("export", "Consolidate a checkpoint of any world size and ZeRO stage into one safetensors file under the model's " +
                                            "parameter names (needs libtorch).")
        {
            dir, tag, output, dtype,
        };
        command.SetAction(r => Export(r.GetValue(dir)!, r.GetValue(tag), r.GetValue(output) ?? throw Usage("--out FILE is required"),
            r.GetValue(dtype)!, r.InvocationConfiguration.Output));
        return command;
    }

    private static int Export(string dir, string? tag, string output, string dtypeName, TextWriter stdout)
    {
        var dtype = dtypeName switch
        {
            "fp32" or "float32" => ScalarType.Float32,
            "bf16" or "bfloat16" => ScalarType.BFloat16,
            _ => ScalarType.Float16,
        };
        var s = CheckpointExport.Export(dir, tag, output, dtype);
        stdout.WriteLine($"exported {s.Tensors} tensors ({s.Elements:N0} elements, {dtypeName}) from {s.TagDirectory} to {output} ({s.Bytes:N0} bytes)");
        return 0;
    }
}
