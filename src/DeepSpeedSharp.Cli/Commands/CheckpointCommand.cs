using DeepSpeedSharp.Checkpoint;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss checkpoint export DIR [--tag T] --out model.safetensors [--dtype fp32|bf16|fp16]` consolidates a checkpoint
/// of any world size and stage into one file under the model's parameter names; `dss checkpoint inspect DIR [--tag T]`
/// prints tags, world size, stage, dtypes and sizes, and verifies every checksum (exit 1 on a problem).
/// </summary>
public sealed class CheckpointCommand : ICliCommand
{
    private const string Usage = "usage: dss checkpoint export DIR [--tag TAG] --out FILE.safetensors [--dtype fp32|bf16|fp16]\n" +
                                 "       dss checkpoint inspect DIR [--tag TAG]";

    /// <inheritdoc />
    public string Name => "checkpoint";

    /// <inheritdoc />
    public string Summary => "checkpoint export DIR --out FILE | checkpoint inspect DIR: consolidate or verify a checkpoint";

    /// <inheritdoc />
    public int Run(string[] args)
    {
        if (args.Length < 2 || args[0] is not ("export" or "inspect") || args[1].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        string verb = args[0], dir = args[1];
        string? tag = null, output = null, dtypeName = "fp32";
        for (int i = 2; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            switch (args[i])
            {
                case "--tag": tag = Next(); break;
                case "--out" when verb == "export": output = Next(); break;
                case "--dtype" when verb == "export": dtypeName = Next(); break;
                default:
                    Console.Error.WriteLine($"dss checkpoint {verb}: unknown option '{args[i]}'\n{Usage}");
                    return 2;
            }
        }
        if (verb == "inspect")
        {
            Console.Write(CheckpointInspector.Inspect(dir, tag, out bool ok));
            return ok ? 0 : 1;
        }
        if (output == null)
        {
            Console.Error.WriteLine($"dss checkpoint export: --out FILE is required\n{Usage}");
            return 2;
        }
        var dtype = dtypeName switch
        {
            "fp32" or "float32" => ScalarType.Float32,
            "bf16" or "bfloat16" => ScalarType.BFloat16,
            "fp16" or "float16" => ScalarType.Float16,
            _ => throw new ArgumentException($"--dtype must be fp32, bf16 or fp16, got '{dtypeName}'"),
        };
        var s = CheckpointExport.Export(dir, tag, output, dtype);
        Console.WriteLine($"exported {s.Tensors} tensors ({s.Elements:N0} elements, {dtypeName}) from {s.TagDirectory} to {output} ({s.Bytes:N0} bytes)");
        return 0;
    }
}
