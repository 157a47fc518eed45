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
    /// <summary>The format version this build writes: 2 (model-parallel shards, DeepSpeed's file names). Version 1 is still read.</summary>
    public const int CurrentVersion = 2;

    /// <summary>Format version.</summary>
    public int Version { get; init; } = CurrentVersion;
    /// <summary>The tag (directory name).</summary>
    public string Tag { get; init; } = "";
    /// <summary>Data-parallel ranks that wrote the checkpoint (DeepSpeed's <c>dp_world_size</c>).</summary>
    public int WorldSize { get; init; }
    /// <summary>Ranks holding one model replica (pipeline × tensor; DeepSpeed's <c>mp_world_size</c>).</summary>
    public int ModelParallelSize { get; init; } = 1;
    /// <summary>The process topology of the run that wrote it (axes pipe, data, model).</summary>
    public CheckpointTopology? Topology { get; init; }
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
    /// <summary>One entry per model-parallel rank: its own trainable parameters and flat index space.</summary>
    public List<CheckpointShard> Shards { get; init; } = new();
    /// <summary>Version 1 only: the flat index space's size (now in <see cref="Shards"/>).</summary>
    public long? TotalElements { get; init; }
    /// <summary>Version 1 only: the trainable parameters (now in <see cref="Shards"/>).</summary>
    public List<CheckpointParameter>? Parameters { get; init; }
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
    /// <summary>Version 1 only: the file with buffers and frozen parameters (now in <see cref="Shards"/>).</summary>
    public string? ModuleStatesFile { get; init; }
    /// <summary>Every data file of the tag, with its checksum.</summary>
    public List<CheckpointFile> Files { get; init; } = new();

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>
    /// Reads <c>checkpoint.json</c> of a tag directory. Errors name the file and the field (bad JSON, a missing field,
    /// a value of the wrong type), and a manifest edited after the save is refused (its counters are checked against
    /// the rank files and every field against its SHA-256; see <c>ManifestIntegrity</c>).
    /// </summary>
    public static CheckpointManifest Read(string tagDirectory)
    {
        var path = Path.Combine(tagDirectory, FileName);
        if (!Directory.Exists(tagDirectory)) throw new DirectoryNotFoundException($"checkpoint directory '{tagDirectory}' does not exist");
        if (!File.Exists(path)) throw new InvalidDataException($"checkpoint '{tagDirectory}' has no {FileName} (an incomplete or foreign checkpoint)");
        var text = File.ReadAllText(path);
        var raw = ManifestParser.Parse(path, text);
        var m = ManifestParser.Deserialize(path, text, raw);
        if (m.Format != FormatName)
            throw new InvalidDataException($"checkpoint manifest '{path}': field 'format' is '{m.Format}', not '{FormatName}' (not a DeepSpeedSharp checkpoint manifest)");
        if (m.Version is < 1 or > CurrentVersion)
            throw new InvalidDataException($"checkpoint manifest '{path}': field 'version' is {m.Version}; this build reads versions 1 to {CurrentVersion}");
        if (m.Version == 1)
            m = m with
            {
                Shards = [new CheckpointShard(0, m.TotalElements ?? 0, m.Parameters ?? new(), m.ModuleStatesFile)],
                TotalElements = null, Parameters = null, ModuleStatesFile = null,
                Topology = new CheckpointTopology(["pipe", "data", "model"], [1, m.WorldSize, 1]),
            };
        if (m.Shards.Count != m.ModelParallelSize || m.Shards.Select(s => s.MpRank).Order().Where((r, i) => r != i).Any())
            throw new InvalidDataException($"checkpoint manifest '{path}': field 'shards' has model-parallel ranks [{string.Join(", ", m.Shards.Select(s => s.MpRank))}]; field 'model_parallel_size' {m.ModelParallelSize} needs one for each of 0..{m.ModelParallelSize - 1}");
        ManifestIntegrity.Verify(path, tagDirectory, raw, m);
        return m;
    }

    /// <summary>Writes the manifest to <paramref name="tagDirectory"/>, with the SHA-256 of each of its fields (<c>field_sha256</c>).</summary>
    public void Write(string tagDirectory)
    {
        var node = JsonNode.Parse(JsonSerializer.Serialize(this, Json))!.AsObject();
        ManifestIntegrity.Seal(node);
        File.WriteAllText(Path.Combine(tagDirectory, FileName), node.ToJsonString(Json));
    }

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

/// <summary>The process topology of a checkpoint: DeepSpeed's axes (pipe, data, model) and their sizes.</summary>
/// <param name="Axes">Axis names in layout order.</param>
/// <param name="Dims">The size of each axis.</param>
public sealed record CheckpointTopology(List<string> Axes, List<int> Dims)
{
    /// <summary>The size of an axis (1 when absent).</summary>
    public int Dim(string axis) => Axes.IndexOf(axis) is var i and >= 0 ? Dims[i] : 1;

    /// <inheritdoc/>
    public override string ToString() => string.Join(" × ", Axes.Select((a, i) => $"{a} {Dims[i]}"));
}

/// <summary>The trainable parameters of one model-parallel rank (its slice of the model) and their flat index space.</summary>
/// <param name="MpRank">The model-parallel rank.</param>
/// <param name="TotalElements">Elements of its (unpadded) flat index space.</param>
/// <param name="Parameters">Its trainable parameters in flat order.</param>
/// <param name="ModuleStatesFile">File with its buffers and frozen parameters, or null when it has none.</param>
public sealed record CheckpointShard(int MpRank, long TotalElements, List<CheckpointParameter> Parameters, string? ModuleStatesFile);

/// <summary>One trainable parameter of the flat index space.</summary>
/// <param name="Name">The module's parameter name.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Offset">First flat index.</param>
/// <param name="Numel">Elements.</param>
/// <param name="Dtype">The model's dtype (safetensors name); saved values are fp32.</param>
/// <param name="PartitionDim">For a tensor-parallel slice, the dimension the full weight is split along across the tensor
/// ranks (export concatenates the slices along it); null for a parameter replicated on every tensor rank.</param>
/// <param name="ModelName">The unsplit model's name when the module's own differs (a pipeline stage's layer-index name,
/// see <see cref="Training.IModelNameMap"/>); export writes it. Null otherwise.</param>
public sealed record CheckpointParameter(string Name, long[] Shape, long Offset, long Numel, string Dtype, int? PartitionDim = null, string? ModelName = null)
{
    /// <summary>The name an export writes: the unsplit model's.</summary>
    public string ExportName => ModelName ?? Name;
}

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
    /// <summary>The data-parallel rank that wrote it (-1 for a model-parallel rank's module states).</summary>
    public int Rank { get; init; }
    /// <summary>The model-parallel rank whose state it holds.</summary>
    public int MpRank { get; init; }
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
