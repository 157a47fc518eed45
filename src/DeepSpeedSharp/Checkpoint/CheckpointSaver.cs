using DeepSpeedSharp.Topology;
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
/// Writes one checkpoint tag atomically, on every rank of the job: every rank writes its file
/// (<c>zero_pp_rank_D_mp_rank_XX_optim_states</c>) into <c>&lt;dir&gt;/.tmp-&lt;tag&gt;-&lt;job&gt;/</c>, data-parallel rank 0
/// of each model-parallel rank also its module states (<c>mp_rank_XX_model_states</c>) and parameter table; once all
/// succeeded, the job's rank 0 writes the manifest (topology, one shard per model-parallel rank, every file's SHA-256),
/// renames the directory to <c>&lt;dir&gt;/&lt;tag&gt;</c> (an existing tag is renamed away first and deleted after) and
/// finally replaces <c>latest</c> through a temporary file. A process killed at any point leaves the previous checkpoint
/// and <c>latest</c> intact; the next successful save removes what it left (<see cref="RemoveDebris"/>).
/// </summary>
internal static class CheckpointSaver
{
    /// <summary>Saves tag <paramref name="tag"/> under <paramref name="directory"/>. <paramref name="betweenRenames"/> runs on the
    /// job's rank 0 between renaming an existing tag away and renaming the new copy into place (fault injection by the tests). <paramref name="layerFiles"/>: extra weight
    /// files written by data-parallel rank 0 of each model-parallel rank (a pipeline's per-layer <c>layer_LL-model_states</c>),
    /// listed and checksummed in the manifest. <paramref name="afterRankFile"/> is called with the path of this rank's file
    /// once it is written (the engine's <c>AfterRankFileWritten</c>: fault injection by the tests).</summary>
    public static string Save(string directory, string tag, bool saveLatest, nn.Module module, ICheckpointableStrategy strategy,
        optim.Optimizer optimizer, CheckpointManifest header, CheckpointPlacement place,
        IReadOnlyList<(string Name, Func<IReadOnlyList<KeyValuePair<string, Tensor>>> Tensors)>? layerFiles = null, Action<string>? afterRankFile = null,
        Action? betweenRenames = null)
    {
        var group = strategy.CheckpointGroup;
        var jobGroup = place.Job;
        int dpSize = group.Size;
        long job = RankAgreement.BroadcastFromFirst(jobGroup, Environment.ProcessId * 100_000L + Random.Shared.Next(100_000));
        string tmp = Path.Combine(directory, $".tmp-{tag}-{job}");
        var names = CheckpointNames.Of(module, strategy.Layout);
        string? reshardProblem = OptimizerStateAccess.WhyNotReshardable(optimizer, strategy.Segments.Select(s => s.Optimized));

        try
        {
            RankAgreement.Run(jobGroup, $"writing checkpoint '{tag}'", () =>
            {
                Directory.CreateDirectory(tmp);
                WriteRankFile(tmp, group.Rank, place, strategy, optimizer, reshardProblem == null, header, afterRankFile);
                if (group.Rank == 0) WriteShard(tmp, place.MpRank, module, strategy, names, layerFiles ?? []);
            });
        }
        catch
        {
            // Every rank knows the write failed (and has finished writing): the partial copy would keep the disk full and
            // fail every later save, so the job's rank 0 removes it. The previous checkpoint and 'latest' are untouched.
            if (jobGroup.Rank == 0)
                try { Directory.Delete(tmp, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            throw;
        }

        RankAgreement.Run(jobGroup, $"committing checkpoint '{tag}'", () =>
        {
            if (jobGroup.Rank != 0) return;
            var reports = new List<RankReport>();
            var shards = new List<CheckpointShard>();
            var files = new List<CheckpointFile>();
            for (int mp = 0; mp < place.MpSize; mp++)
            {
                var shard = ReadJson<ShardReport>(ShardReportPath(tmp, mp), $"model-parallel rank {mp}", tmp);
                shards.Add(shard.Shard);
                for (int dp = 0; dp < dpSize; dp++)
                {
                    var report = ReadJson<RankReport>(ReportPath(tmp, dp, mp), $"data-parallel rank {dp} of model-parallel rank {mp}", tmp);
                    reports.Add(report);
                    files.Add(report.File);
                }
                if (shard.ModuleStates != null) files.Add(shard.ModuleStates);
                files.AddRange(shard.LayerFiles ?? []);
            }
            var manifest = header with
            {
                Tag = tag,
                WorldSize = dpSize,
                ModelParallelSize = place.MpSize,
                Topology = place.Topology,
                ZeroStage = strategy.Stage,
                Shards = shards,
                Optimizer = new CheckpointOptimizer(optimizer.GetType().Name, reshardProblem == null,
                    reports.SelectMany(r => r.Kinds).Distinct().ToList(), optimizer.ParamGroups.Select(g => g.LearningRate).ToList()),
                Files = files,
            };
            manifest.Write(tmp);
            foreach (var report in Directory.EnumerateFiles(tmp, "*.report.json")) File.Delete(report);
            Commit(directory, tmp, tag, job, saveLatest, betweenRenames);
            InterruptedResave.Restore(directory);
            RemoveDebris(directory);
        });
        return Path.Combine(directory, tag);
    }

    /// <summary>
    /// After a successful save: removes what interrupted saves left in <paramref name="directory"/> — partial tag
    /// directories (<c>.tmp-&lt;tag&gt;-&lt;n&gt;</c>), tags renamed away before their replacement (<c>.old-&lt;tag&gt;-&lt;n&gt;</c>) and
    /// temporary <c>latest</c> files (<c>.latest-&lt;n&gt;</c>). This save's own are gone by now (renamed or deleted).
    /// Best effort: what cannot be removed is left for the next save.
    /// </summary>
    internal static void RemoveDebris(string directory)
    {
        try
        {
            foreach (var d in Directory.EnumerateDirectories(directory, ".tmp-*").Concat(Directory.EnumerateDirectories(directory, ".old-*")).ToList())
                try { Directory.Delete(d, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            foreach (var f in Directory.EnumerateFiles(directory, ".latest-*").ToList())
                try { File.Delete(f); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static string ReportPath(string tmp, int dpRank, int mpRank) =>
        Path.Combine(tmp, string.Create(CultureInfo.InvariantCulture, $"dp{dpRank}-mp{mpRank}.report.json"));

    private static string ShardReportPath(string tmp, int mpRank) =>
        Path.Combine(tmp, string.Create(CultureInfo.InvariantCulture, $"mp{mpRank}.report.json"));

    private sealed record RankReport(CheckpointFile File, List<string> Kinds);

    private sealed record ShardReport(CheckpointShard Shard, CheckpointFile? ModuleStates, List<CheckpointFile>? LayerFiles);

    /// <summary>Data-parallel rank 0 of each model-parallel rank: its module states file and its parameter table.</summary>
    private static void WriteShard(string tmp, int mpRank, nn.Module module, ICheckpointableStrategy strategy, string[] names,
        IReadOnlyList<(string Name, Func<IReadOnlyList<KeyValuePair<string, Tensor>>> Tensors)> layerFiles)
    {
        var layout = strategy.Layout;
        string? moduleFile = WriteModuleStates(tmp, mpRank, module, strategy);
        var modelNames = CheckpointNames.Keys(module, names);
        var shard = new CheckpointShard(mpRank, layout.Total,
            names.Select((n, i) => new CheckpointParameter(n, layout.Shapes[i], layout.Offsets[i], layout.Numels[i], SafeTensors.DTypeName(layout.DTypes[i]),
                layout.Parameters[i].GetParallelAttributes() is { TensorModelParallel: true } a ? a.PartitionDim : null,
                modelNames[i] != n ? modelNames[i] : null)).ToList(),
            moduleFile);
        var described = moduleFile == null ? null : Describe(tmp, moduleFile, -1, mpRank, new(), false, false);
        var layers = new List<CheckpointFile>();
        foreach (var (name, tensors) in layerFiles)
        {
            using var scope = NewDisposeScope();
            CheckpointFileWriter.Write(Path.Combine(tmp, name), tensors());
            layers.Add(Describe(tmp, name, -1, mpRank, new(), false, false));
        }
        File.WriteAllText(ShardReportPath(tmp, mpRank), JsonSerializer.Serialize(new ShardReport(shard, described, layers), CheckpointManifest.Json));
    }

    private static void WriteRankFile(string tmp, int rank, CheckpointPlacement place, ICheckpointableStrategy strategy, optim.Optimizer optimizer, bool reshardable, CheckpointManifest header,
        Action<string>? afterRankFile)
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
        foreach (var (stream, state) in place.Rng?.GetStates() ?? new Dictionary<string, Tensor>())
            tensors.Add(new(CheckpointPlacement.TrackerPrefix + stream, state));
        if (!reshardable)
        {
            if (optimizer is not OptimizerHelper helper)
                throw new NotSupportedException($"the optimizer {optimizer.GetType().Name} has no state this checkpoint can store (it is not a managed TorchSharp optimizer)");
            using var ms = new MemoryStream();
            using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) helper.save_state_dict(w);
            tensors.Add(new("optimizer_binary", tensor(ms.ToArray(), ScalarType.Byte)));
        }
        string name = CheckpointNames.OptimStatesFile(rank, place.MpRank);
        string path = Path.Combine(tmp, name);
        // The counters go into the file too, so an edited manifest can be told from the state it describes.
        CheckpointFileWriter.Write(path, tensors, ManifestIntegrity.CountersOf(header));
        afterRankFile?.Invoke(path);
        var report = new RankReport(Describe(tmp, name, rank, place.MpRank, pieces, true, !reshardable), kinds);
        File.WriteAllText(ReportPath(tmp, rank, place.MpRank), JsonSerializer.Serialize(report, CheckpointManifest.Json));
    }

    private static Tensor Slice(Tensor t, long offset, long length) =>
        t.detach().reshape(-1).narrow(0, offset, length).to(ScalarType.Float32);

    /// <summary>Writes the buffers and frozen parameters; returns the file name, or null when the module has none.</summary>
    private static string? WriteModuleStates(string tmp, int mpRank, nn.Module module, ICheckpointableStrategy strategy)
    {
        var trainable = strategy.Layout.Parameters.Select(p => p.Handle).ToHashSet();
        var extra = CheckpointNames.ModuleStates(module, trainable);
        if (extra.Count == 0) return null;
        string name = CheckpointNames.ModelStatesFile(mpRank);
        CheckpointFileWriter.Write(Path.Combine(tmp, name), extra.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value)));
        return name;
    }

    private static CheckpointFile Describe(string tmp, string name, int rank, int mpRank, List<CheckpointPiece> pieces, bool rng, bool binary)
    {
        var path = Path.Combine(tmp, name);
        return new CheckpointFile
        {
            Name = name, Rank = rank, MpRank = mpRank, Bytes = new FileInfo(path).Length, Sha256 = CheckpointManifest.Sha256Of(path),
            Pieces = pieces, HasRngState = rng, HasOptimizerBinary = binary,
        };
    }

    private static T ReadJson<T>(string path, string who, string tmp)
    {
        if (!File.Exists(path)) throw new IOException($"{who} did not leave its report '{path}': is '{tmp}' on storage every rank shares?");
        return JsonSerializer.Deserialize<T>(File.ReadAllText(path), CheckpointManifest.Json)
               ?? throw new InvalidDataException($"report '{path}' is empty");
    }

    private static void Commit(string directory, string tmp, string tag, long job, bool saveLatest, Action? betweenRenames)
    {
        string target = Path.Combine(directory, tag);
        string? old = null;
        if (Directory.Exists(target))
        {
            old = Path.Combine(directory, $".old-{tag}-{job}");
            Directory.Move(target, old);
            // A job stopped here has neither TAG nor a stray copy only: InterruptedResave finds the complete one.
            betweenRenames?.Invoke();
        }
        Directory.Move(tmp, target);
        if (old != null) Directory.Delete(old, recursive: true);
        if (!saveLatest) return;
        string latestTmp = Path.Combine(directory, $".latest-{job}");
        File.WriteAllText(latestTmp, tag);
        File.Move(latestTmp, Path.Combine(directory, CheckpointNames.LatestFile), overwrite: true);
    }
}
