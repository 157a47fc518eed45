using DeepSpeedSharp.Training;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.Schedulers;
using DeepSpeedSharp.Utils;

namespace DeepSpeedSharp.Engine;

/// <summary>What <see cref="DeepSpeedEngine.LoadCheckpoint"/> returns (DeepSpeed's <c>(load_path, client_state)</c>).</summary>
/// <param name="LoadPath">The tag directory loaded, or null when <c>latest</c> was missing and nothing was loaded.</param>
/// <param name="ClientState">The client state saved with it (null when nothing was loaded).</param>
public sealed record CheckpointLoadResult(string? LoadPath, JsonObject? ClientState);

public partial class DeepSpeedEngine
{
    /// <summary>Called on each rank with the path of its checkpoint file once written, before the save commits: how the
    /// tests inject a rank dying mid-save (a constructor-time option of the test worker's engine; null in normal use).</summary>
    internal Action<string>? AfterRankFileWritten { get; set; }

    /// <summary>Called on the job's rank 0 between renaming an existing tag away and renaming its new copy into place (the
    /// tests' kill between the renames; null in normal use).</summary>
    internal Action? BetweenCommitRenames { get; set; }

    /// <summary>
    /// Saves a checkpoint (DeepSpeed's <c>save_checkpoint</c>); call it on every rank. <paramref name="tag"/> defaults
    /// to <c>global_step{GlobalSteps}</c> and is checked to be the same on every rank per
    /// <c>checkpoint.tag_validation</c> (Ignore, Warn, Fail). <paramref name="clientState"/> is any object that
    /// serialises to a JSON object; it comes back from <see cref="LoadCheckpoint"/>. The tag is written atomically:
    /// until it is complete, the previous checkpoint and <c>latest</c> are untouched; <c>latest</c> is updated last
    /// when <paramref name="saveLatest"/>. Returns true, as DeepSpeed does.
    /// </summary>
    public bool SaveCheckpoint(string saveDir, string? tag = null, object? clientState = null, bool saveLatest = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(saveDir);
        var (cs, optimizer) = Checkpointable("SaveCheckpoint");
        tag ??= CheckpointNames.DefaultTag(GlobalSteps);
        CheckpointNames.CheckTag(tag);
        ValidateTag(tag);
        if (MicroSteps % GradientAccumulationSteps != 0)
            Log.Warn($"SaveCheckpoint('{tag}') is called in the middle of a gradient-accumulation cycle; the partial gradients are not saved");
        var client = clientState switch
        {
            null => null,
            JsonObject o => o,
            _ => JsonSerializer.SerializeToNode(clientState) as JsonObject
                 ?? throw new ArgumentException($"clientState must serialise to a JSON object; a {clientState.GetType().Name} does not"),
        };
        var header = new CheckpointManifest
        {
            GlobalSteps = GlobalSteps, GlobalSamples = GlobalSamples, SkippedSteps = SkippedSteps, MicroSteps = MicroSteps,
            GradientAccumulationSteps = GradientAccumulationSteps, TrainBatchSize = TrainBatchSize,
            LrScheduler = LrScheduler == null ? null : new JsonObject { [LrSchedulerState.LastBatchIterationKey] = LrScheduler.StateDict().LastBatchIteration },
            ExtraState = WithDataSamplerState(cs.SaveExtraState()),
            ClientState = client?.DeepClone().AsObject(),
            Config = JsonNode.Parse(Config.ToJson()),
        };
        Directory.CreateDirectory(saveDir);
        var path = CheckpointSaver.Save(saveDir, tag, saveLatest, Module, cs, optimizer, header, Placement(), LayerFiles(), AfterRankFileWritten, BetweenCommitRenames);
        Log.Info($"saved checkpoint {path}");
        return true;
    }

    /// <summary>
    /// Loads a checkpoint (DeepSpeed's <c>load_checkpoint</c>); call it on every rank. <paramref name="tag"/> null reads
    /// <c>latest</c> (with <c>checkpoint.load_universal</c>, <c>latest_universal</c> first); when that file is missing a warning is logged and (null, null) returned. The checkpoint may come
    /// from any data-parallel world size and ZeRO stage. Restores weights (strictly: every name must match unless
    /// <paramref name="loadModuleStrict"/> is false), optimizer state, LR scheduler, counters, RNG state and strategy
    /// state as the flags say; <paramref name="loadModuleOnly"/> restores the weights alone. A corrupt or incompatible
    /// checkpoint throws an error naming the file or tensor and leaves the engine unchanged.
    /// </summary>
    public CheckpointLoadResult LoadCheckpoint(string loadDir, string? tag = null, bool loadModuleStrict = true,
        bool loadOptimizerStates = true, bool loadLrSchedulerStates = true, bool loadModuleOnly = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(loadDir);
        var (cs, optimizer) = Checkpointable("LoadCheckpoint");
        if (tag == null)
        {
            // checkpoint.load_universal (DeepSpeed reads 'latest_universal' then): every checkpoint here is already
            // universal (it loads on any topology), so 'latest_universal' is read when present and 'latest' otherwise.
            if (Config.Checkpoint.LoadUniversal) tag = CheckpointNames.ReadLatest(loadDir, CheckpointNames.LatestUniversalFile);
            tag ??= CheckpointNames.ReadLatest(loadDir);
            if (tag == null)
            {
                Log.Warn($"Unable to find latest file at {Path.Combine(loadDir, CheckpointNames.LatestFile)}, if trying to load latest checkpoint please pass an explicit tag or save with saveLatest");
                return new CheckpointLoadResult(null, null);
            }
        }
        CheckpointNames.CheckTag(tag);
        ValidateTag(tag);
        string tagDir = InterruptedResave.FindTagDirectory(loadDir, tag) ?? Path.Combine(loadDir, tag);
        if (InterruptedResave.IsLeftCopy(tagDir))
            Log.Warn($"checkpoint tag '{tag}' was being re-saved when the job stopped: loading its complete copy {tagDir} (the next save puts it back under '{tag}')");
        var m = CheckpointLoader.Load(tagDir, Module, cs, optimizer, new LoadOptions(loadModuleStrict, loadOptimizerStates, loadModuleOnly), Placement());
        if (!loadModuleOnly)
        {
            if (loadLrSchedulerStates && LrScheduler != null && m.LrScheduler?[LrSchedulerState.LastBatchIterationKey] is { } it)
                LrScheduler.LoadStateDict(new LrSchedulerState(it.GetValue<int>()));
            cs.LoadExtraState(m.ExtraState);
            LoadDataSamplerState(m.ExtraState);
            GlobalSteps = m.GlobalSteps;
            GlobalSamples = m.GlobalSamples;
            SkippedSteps = m.SkippedSteps;
            MicroSteps = m.GlobalSteps * GradientAccumulationSteps;
        }
        Log.Info($"loaded checkpoint {tagDir} (saved at world size {m.WorldSize}, ZeRO stage {m.ZeroStage}; now {DataParallelWorldSize}, stage {cs.Stage})");
        return new CheckpointLoadResult(tagDir, m.ClientState);
    }

    private (ICheckpointableStrategy, TorchSharp.torch.optim.Optimizer) Checkpointable(string what)
    {
        if (strategy == null || Optimizer == null)
            throw new InvalidOperationException($"{what} needs a training engine: pass an optimizer to DeepSpeed.Initialize or add an \"optimizer\" section to the config");
        if (strategy is not ICheckpointableStrategy cs)
            throw new NotSupportedException($"{what}: the ZeRO stage {Config.ZeroOptimization.Stage} strategy ({strategy.GetType().Name}) cannot write or read checkpoints in this build");
        return (cs, Optimizer);
    }

    /// <summary>
    /// A pipeline module's weights layer by layer, as DeepSpeed stores them (<c>layer_LL-model_states</c>: each layer's own
    /// parameters and buffers under the layer's names, in the model's dtype); none for other modules. Resuming reads the
    /// fp32 master weights of the optimizer-state files; these files are DeepSpeed's layout for tools that read layers.
    /// </summary>
    private IReadOnlyList<(string, Func<IReadOnlyList<KeyValuePair<string, TorchSharp.torch.Tensor>>>)>? LayerFiles()
    {
        if (Module is not Pipeline.PipelineModule pipe) return null;
        string repr = pipe.Grid.Topology.GetRankRepr(pipe.Grid.GlobalRank);
        return pipe.LocalLayers().Where(l => l.Module.parameters().Any() || l.Module.buffers().Any())
            .Select(l => (CheckpointNames.LayerFile(l.Index, repr), (Func<IReadOnlyList<KeyValuePair<string, TorchSharp.torch.Tensor>>>)(() =>
                l.Module.named_parameters().Select(p => new KeyValuePair<string, TorchSharp.torch.Tensor>(p.name, p.parameter.detach()))
                    .Concat(l.Module.named_buffers().Select(b => new KeyValuePair<string, TorchSharp.torch.Tensor>(b.name, b.buffer.detach())))
                    .ToList())))
            .ToList();
    }

    /// <summary>This rank's place in a checkpoint: the job, its model-parallel rank and the topology.</summary>
    private CheckpointPlacement Placement()
    {
        var rng = ActivationCheckpointing.GetRngTracker();
        if (Layout.Mpu == null) return CheckpointPlacement.DataParallel(DataParallelGroup) with { Rng = rng };
        var topology = new CheckpointTopology(["pipe", "data", "model"],
            [Layout.PipelineParallelSize, Layout.DataParallelSize, Layout.TensorParallelSize]);
        return new CheckpointPlacement(JobGroup, Layout.ModelParallelRank, Layout.ModelParallelSize, topology,
            LayerNamed: Module is Pipeline.PipelineModule, Rng: rng);
    }

    /// <summary>checkpoint.tag_validation: every rank must use the same tag.</summary>
    private void ValidateTag(string tag)
    {
        string mode = Config.Checkpoint.TagValidation;
        if (mode == "Ignore" || JobGroup.Size == 1) return;
        var hashes = RankAgreement.GatherHashes(JobGroup, tag);
        if (hashes.Distinct().Count() == 1) return;
        string msg = $"checkpoint tag '{tag}' (on rank {GlobalRank}) is not the same on every rank; pass the same tag everywhere";
        if (mode == "Fail") throw new InvalidOperationException(msg + " (checkpoint.tag_validation is \"Fail\")");
        Log.Warn(msg);
    }
}
