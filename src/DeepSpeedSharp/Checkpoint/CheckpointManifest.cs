using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// The metadata file of one checkpoint tag (<c>checkpoint.json</c>): counters, config, parameter table of the flat
/// index space, optimizer and scheduler state, client state, and every data file with its size, SHA-256 and the flat
/// ranges it holds. Written last inside the temporary directory, so a tag directory with a manifest is complete.
/// </summary>
public sealed record CheckpointManifest
{
    /// <summary>The manifest's file name inside a tag directory.</summary>
    public const string FileName = "checkpoint.json";

    /// <summary>The value of <see cref="Format"/>.</summary>
    public const string FormatName = "deepspeedsharp-checkpoint";

    /// <summary>Always <see cref="FormatName"/>.</summary>
    public string Format { get; init; } = FormatName;
    /// <summary>Format version (1).</summary>
    public int Version { get; init; } = 1;
    /// <summary>The tag (directory name).</summary>
    public string Tag { get; init; } = "";
    /// <summary>Data-parallel ranks that wrote the checkpoint.</summary>
    public int WorldSize { get; init; }
    /// <summary>ZeRO stage of the run that wrote it.</summary>
    public int ZeroStage { get; init; }
    /// <summary>Engine counters.</summary>
    public long GlobalSteps { get; init; }
    /// <summary>Engine counters.</summary>
    public long GlobalSamples { get; init; }
    /// <summary>Engine counters.</summary>
    public long SkippedSteps { get; init; }
    /// <summary>Engine counters.</summary>
    public long MicroSteps { get; init; }
    /// <summary>Micro-steps per optimizer step of the run that wrote it.</summary>
    public int GradientAccumulationSteps { get; init; }
    /// <summary>Global batch size of the run that wrote it.</summary>
    public int TrainBatchSize { get; init; }
    /// <summary>Elements of the (unpadded) flat index space of the trainable parameters.</summary>
    public long TotalElements { get; init; }
    /// <summary>The trainable parameters in flat order.</summary>
    public List<CheckpointParameter> Parameters { get; init; } = new();
    /// <summary>The optimizer's description, or null for an engine without optimizer.</summary>
    public CheckpointOptimizer? Optimizer { get; init; }
    /// <summary>The LR scheduler's state (<c>{"last_batch_iteration": n}</c>), or null.</summary>
    public JsonObject? LrScheduler { get; init; }
    /// <summary>Strategy sections needed to resume exactly (e.g. <c>loss_scaler</c>).</summary>
    public JsonObject ExtraState { get; init; } = new();
    /// <summary>The user's client state.</summary>
    public JsonObject? ClientState { get; init; }
    /// <summary>The DeepSpeed config of the run.</summary>
    public JsonNode? Config { get; init; }
    /// <summary>File with the buffers and frozen parameters (rank 0), or null when the model has none.</summary>
    public string? ModuleStatesFile { get; init; }
    /// <summary>Every data file of the tag, with its checksum.</summary>
    public List<CheckpointFile> Files { get; init; } = new();

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads <c>checkpoint.json</c> of a tag directory; errors name the file.</summary>
    public static CheckpointManifest Read(string tagDirectory)
    {
        var path = Path.Combine(tagDirectory, FileName);
        if (!Directory.Exists(tagDirectory)) throw new DirectoryNotFoundException($"checkpoint directory '{tagDirectory}' does not exist");
        if (!File.Exists(path)) throw new InvalidDataException($"checkpoint '{tagDirectory}' has no {FileName} (an incomplete or foreign checkpoint)");
        CheckpointManifest? m;
        try
        {
            m = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"checkpoint manifest '{path}' is not valid JSON ({e.Message})");
        }
        if (m == null || m.Format != FormatName)
            throw new InvalidDataException($"checkpoint manifest '{path}' is not a {FormatName} manifest");
        if (m.Version != 1) throw new InvalidDataException($"checkpoint manifest '{path}' has version {m.Version}; this build reads version 1");
        return m;
    }

    /// <summary>Writes the manifest to <paramref name="tagDirectory"/>.</summary>
    public void Write(string tagDirectory) =>
        File.WriteAllText(Path.Combine(tagDirectory, FileName), JsonSerializer.Serialize(this, Json));

    /// <summary>
    /// Checks that every listed file exists with its recorded size and SHA-256; returns one message per problem,
    /// each naming the file.
    /// </summary>
    public List<string> VerifyFiles(string tagDirectory, IEnumerable<string>? only = null)
    {
        var problems = new List<string>();
        var wanted = only?.ToHashSet();
        foreach (var f in Files)
        {
            if (wanted != null && !wanted.Contains(f.Name)) continue;
            var path = Path.Combine(tagDirectory, f.Name);
            if (!File.Exists(path)) { problems.Add($"file '{path}' is missing"); continue; }
            long size = new FileInfo(path).Length;
            if (size != f.Bytes) { problems.Add($"file '{path}' has {size} bytes, the manifest says {f.Bytes} (truncated or replaced)"); continue; }
            var hash = Sha256Of(path);
            if (hash != f.Sha256) problems.Add($"file '{path}' fails its checksum (sha256 {hash[..16]}…, expected {f.Sha256[..Math.Min(16, f.Sha256.Length)]}…): the file was altered");
        }
        return problems;
    }

    /// <summary>The lowercase hex SHA-256 of a file.</summary>
    public static string Sha256Of(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}

/// <summary>One trainable parameter of the flat index space.</summary>
/// <param name="Name">The module's parameter name.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Offset">First flat index.</param>
/// <param name="Numel">Elements.</param>
/// <param name="Dtype">The model's dtype (safetensors name); saved values are fp32.</param>
public sealed record CheckpointParameter(string Name, long[] Shape, long Offset, long Numel, string Dtype);

/// <summary>The optimizer of the run.</summary>
/// <param name="Type">Its class name.</param>
/// <param name="Reshardable">True when its state is stored per flat range (any world size and stage can load it);
/// false when stored in TorchSharp's binary form per rank (same world size and stage only).</param>
/// <param name="StateKinds">Names of the element-wise state tensors (e.g. exp_avg, exp_avg_sq).</param>
/// <param name="Lrs">The learning rate of each parameter group.</param>
public sealed record CheckpointOptimizer(string Type, bool Reshardable, List<string> StateKinds, List<double> Lrs);

/// <summary>A flat range [Start, Start + Length) stored in a file, with the step count of its optimizer state.</summary>
public sealed record CheckpointPiece(long Start, long Length, long? Step);

/// <summary>One data file of a checkpoint tag.</summary>
public sealed record CheckpointFile
{
    /// <summary>File name inside the tag directory.</summary>
    public string Name { get; init; } = "";
    /// <summary>The rank that wrote it (-1 for files of the whole job).</summary>
    public int Rank { get; init; }
    /// <summary>Size in bytes.</summary>
    public long Bytes { get; init; }
    /// <summary>Lowercase hex SHA-256.</summary>
    public string Sha256 { get; init; } = "";
    /// <summary>The flat ranges it holds (tensors <c>master@start</c> and <c>kind@start</c>).</summary>
    public List<CheckpointPiece> Pieces { get; init; } = new();
    /// <summary>Whether it holds the rank's RNG state (tensor <c>rng_state</c>).</summary>
    public bool HasRngState { get; init; }
    /// <summary>Whether it holds the rank's optimizer state in TorchSharp's binary form (tensor <c>optimizer_binary</c>).</summary>
    public bool HasOptimizerBinary { get; init; }
}
