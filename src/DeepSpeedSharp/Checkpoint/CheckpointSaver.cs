using DeepSpeedSharp.Training;
using System.Globalization;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Writes one checkpoint tag atomically, on every rank of the data-parallel group: every rank writes its file into
/// <c>&lt;dir&gt;/.tmp-&lt;tag&gt;-&lt;job&gt;/</c>; once all succeeded, rank 0 writes the manifest (with every file's
/// SHA-256), renames the directory to <c>&lt;dir&gt;/&lt;tag&gt;</c> (an existing tag is renamed away first and deleted
/// after) and finally replaces <c>latest</c> through a temporary file. A process killed at any point leaves the previous
/// checkpoint and <c>latest</c> intact.
/// </summary>
internal static class CheckpointSaver
{
    /// <summary>Test hook: when set to a step number, the last rank exits half-way through writing that step's checkpoint.</summary>
    public const string CrashVariable = "DSS_TEST_CRASH_DURING_SAVE";

    public static string Save(string directory, string tag, bool saveLatest, nn.Module module, ICheckpointableStrategy strategy,
        optim.Optimizer optimizer, CheckpointManifest header)
    {
        var group = strategy.CheckpointGroup;
        long job = RankAgreement.BroadcastFromFirst(group, Environment.ProcessId * 100_000L + Random.Shared.Next(100_000));
        string tmp = Path.Combine(directory, $".tmp-{tag}-{job}");
        var names = CheckpointNames.Of(module, strategy.Layout);
        string? reshardProblem = OptimizerStateAccess.WhyNotReshardable(optimizer, strategy.Segments.Select(s => s.Optimized));

        RankAgreement.Run(group, $"writing checkpoint '{tag}'", () =>
        {
            Directory.CreateDirectory(tmp);
            WriteRankFile(tmp, group.Rank, strategy, optimizer, reshardProblem == null, header.GlobalSteps);
            if (group.Rank == 0) WriteModuleStates(tmp, module, strategy);
        });

        RankAgreement.Run(group, $"committing checkpoint '{tag}'", () =>
        {
            if (group.Rank != 0) return;
            var reports = Enumerable.Range(0, group.Size).Select(r => ReadReport(tmp, r)).ToList();
            var files = reports.Select(r => r.File).ToList();
            string? moduleFile = File.Exists(Path.Combine(tmp, ModuleStatesFile)) ? ModuleStatesFile : null;
            if (moduleFile != null) files.Add(Describe(tmp, moduleFile, -1, new(), false, false));
            var manifest = header with
            {
                Tag = tag,
                WorldSize = group.Size,
                ZeroStage = strategy.Stage,
                TotalElements = strategy.Layout.Total,
                Parameters = names.Select((n, i) => new CheckpointParameter(n, strategy.Layout.Shapes[i],
                    strategy.Layout.Offsets[i], strategy.Layout.Numels[i], SafeTensors.DTypeName(strategy.Layout.DTypes[i]))).ToList(),
                Optimizer = new CheckpointOptimizer(optimizer.GetType().Name, reshardProblem == null,
                    reports.SelectMany(r => r.Kinds).Distinct().ToList(), optimizer.ParamGroups.Select(g => g.LearningRate).ToList()),
                ModuleStatesFile = moduleFile,
                Files = files,
            };
            manifest.Write(tmp);
            for (int r = 0; r < group.Size; r++) File.Delete(ReportPath(tmp, r));
            Commit(directory, tmp, tag, job, saveLatest);
        });
        return Path.Combine(directory, tag);
    }

    public const string ModuleStatesFile = "module_states.safetensors";

    /// <summary>The data file of a rank.</summary>
    public static string RankFile(int rank) => string.Create(CultureInfo.InvariantCulture, $"rank{rank:D5}.safetensors");

    private static string ReportPath(string tmp, int rank) => Path.Combine(tmp, string.Create(CultureInfo.InvariantCulture, $"rank{rank:D5}.report.json"));

    private sealed record RankReport(CheckpointFile File, List<string> Kinds);

    private static void WriteRankFile(string tmp, int rank, ICheckpointableStrategy strategy, optim.Optimizer optimizer, bool reshardable, long step)
    {
        using var scope = NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var pieces = new List<CheckpointPiece>();
        var kinds = new List<string>();
        var states = OptimizerStateAccess.States(optimizer);
        if (strategy.WritesSegments)
        {
            foreach (var seg in strategy.Segments.Where(s => s.Length > 0))
            {
                string at = seg.FlatStart.ToString(CultureInfo.InvariantCulture);
                tensors.Add(new($"master@{at}", Slice(seg.Optimized, seg.OptimizedOffset, seg.Length)));
                long? segStep = null;
                if (reshardable && states.TryGetValue(seg.Optimized.Handle, out var state))
                {
                    foreach (var (kind, t) in OptimizerStateAccess.Tensors(state))
                    {
                        tensors.Add(new($"{kind}@{at}", Slice(t, seg.OptimizedOffset, seg.Length)));
                        if (!kinds.Contains(kind)) kinds.Add(kind);
                    }
                    segStep = OptimizerStateAccess.GetStep(state);
                }
                pieces.Add(new CheckpointPiece(seg.FlatStart, seg.Length, segStep));
            }
        }
        tensors.Add(new("rng_state", torch.get_rng_state()));
        if (!reshardable)
        {
            if (optimizer is not OptimizerHelper helper)
                throw new NotSupportedException($"the optimizer {optimizer.GetType().Name} has no state this checkpoint can store (it is not a managed TorchSharp optimizer)");
            using var ms = new MemoryStream();
            using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) helper.save_state_dict(w);
            tensors.Add(new("optimizer_binary", tensor(ms.ToArray(), ScalarType.Byte)));
        }
        string name = RankFile(rank);
        string path = Path.Combine(tmp, name);
        SafeTensors.Write(path, tensors);
        MaybeCrash(path, rank, strategy.CheckpointGroup.Size, step);
        var report = new RankReport(Describe(tmp, name, rank, pieces, true, !reshardable), kinds);
        File.WriteAllText(ReportPath(tmp, rank), JsonSerializer.Serialize(report, CheckpointManifest.Json));
    }

    private static Tensor Slice(Tensor t, long offset, long length) =>
        t.detach().reshape(-1).narrow(0, offset, length).to(ScalarType.Float32);

    private static void WriteModuleStates(string tmp, nn.Module module, ICheckpointableStrategy strategy)
    {
        var trainable = strategy.Layout.Parameters.Select(p => p.Handle).ToHashSet();
        var extra = CheckpointNames.ModuleStates(module, trainable);
        if (extra.Count == 0) return;
        SafeTensors.Write(Path.Combine(tmp, ModuleStatesFile), extra.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value)));
    }

    private static CheckpointFile Describe(string tmp, string name, int rank, List<CheckpointPiece> pieces, bool rng, bool binary)
    {
        var path = Path.Combine(tmp, name);
        return new CheckpointFile
        {
            Name = name, Rank = rank, Bytes = new FileInfo(path).Length, Sha256 = CheckpointManifest.Sha256Of(path),
            Pieces = pieces, HasRngState = rng, HasOptimizerBinary = binary,
        };
    }

    private static RankReport ReadReport(string tmp, int rank)
    {
        var path = ReportPath(tmp, rank);
        if (!File.Exists(path)) throw new IOException($"rank {rank} did not leave its report '{path}': is '{tmp}' on storage every rank shares?");
        return JsonSerializer.Deserialize<RankReport>(File.ReadAllText(path), CheckpointManifest.Json)
               ?? throw new InvalidDataException($"report '{path}' is empty");
    }

    private static void Commit(string directory, string tmp, string tag, long job, bool saveLatest)
    {
        string target = Path.Combine(directory, tag);
        string? old = null;
        if (Directory.Exists(target))
        {
            old = Path.Combine(directory, $".old-{tag}-{job}");
            Directory.Move(target, old);
        }
        Directory.Move(tmp, target);
        if (old != null) Directory.Delete(old, recursive: true);
        if (!saveLatest) return;
        string latestTmp = Path.Combine(directory, $".latest-{job}");
        File.WriteAllText(latestTmp, tag);
        File.Move(latestTmp, Path.Combine(directory, CheckpointNames.LatestFile), overwrite: true);
    }

    private static void MaybeCrash(string path, int rank, int size, long step)
    {
        var v = Environment.GetEnvironmentVariable(CrashVariable);
        if (v == null || rank != size - 1 || v != step.ToString(CultureInfo.InvariantCulture)) return;
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.SetLength(f.Length / 2);
        Console.Error.WriteLine($"[dss] {CrashVariable}={v}: rank {rank} exits while writing its checkpoint file");
        Console.Error.Flush();
        Environment.Exit(86);
    }
}
