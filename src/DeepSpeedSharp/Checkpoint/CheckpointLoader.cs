using DeepSpeedSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>What <see cref="CheckpointLoader"/> should restore (DeepSpeed's load_checkpoint flags).</summary>
internal sealed record LoadOptions(bool ModuleStrict, bool OptimizerStates, bool ModuleOnly);

/// <summary>
/// Loads a checkpoint tag into a strategy of any world size and stage. Two phases: <b>prepare</b> reads and checks
/// everything this rank needs (files, checksums, names, shapes, step counts) without touching the model; all ranks
/// agree that every rank prepared successfully; then <b>apply</b> copies the values in and the strategy makes them
/// visible. A corrupt or incompatible checkpoint therefore changes nothing on any rank.
/// </summary>
internal static class CheckpointLoader
{
    public static CheckpointManifest Load(string tagDirectory, nn.Module module, ICheckpointableStrategy strategy,
        optim.Optimizer optimizer, LoadOptions options, CheckpointPlacement place)
    {
        var group = strategy.CheckpointGroup;
        CheckpointManifest? manifest = null;
        ShardSet? shards = null;
        var actions = new List<Action>();
        try
        {
            RankAgreement.Run(place.Job, $"reading checkpoint '{tagDirectory}'", () =>
            {
                manifest = CheckpointManifest.Read(tagDirectory);
                shards = ShardSet.Open(tagDirectory, manifest, place);
                Prepare(shards, module, strategy, optimizer, options, group.Rank, place, actions);
            });
            using (no_grad())
                foreach (var a in actions) a();
            strategy.AfterLoad();
            return manifest!;
        }
        finally
        {
            shards?.Dispose();
        }
    }

    private static void Prepare(ShardSet shards, nn.Module module, ICheckpointableStrategy strategy, optim.Optimizer optimizer,
        LoadOptions options, int rank, CheckpointPlacement place, List<Action> actions)
    {
        var reader = shards.First;
        var m = reader.Manifest;
        var layout = strategy.Layout;
        var names = CheckpointNames.Keys(module, CheckpointNames.Of(module, layout));
        var problems = new List<string>();
        for (int i = 0; i < names.Length; i++)
        {
            if (!shards.TryFind(names[i], out var p))
            {
                if (options.ModuleStrict) problems.Add($"parameter '{names[i]}' is missing from the checkpoint");
            }
            else if (!p.Shape.SequenceEqual(layout.Shapes[i]))
                problems.Add($"parameter '{names[i]}' has shape [{string.Join(", ", p.Shape)}] in the checkpoint, the model needs [{string.Join(", ", layout.Shapes[i])}]");
        }
        // With another pipeline size each stage holds only some of the checkpoint's parameters.
        if (options.ModuleStrict && shards.IsOwnShard)
            problems.AddRange(reader.ByModelName.Keys.Except(names).Order().Select(n => $"the checkpoint has trainable parameter '{n}' that the model's trainable parameters lack"));
        PrepareModuleStates(shards, module, strategy, options, problems, actions);

        bool optimizerState = options.OptimizerStates && !options.ModuleOnly && m.Optimizer != null;
        if (optimizerState) CheckOptimizer(m, shards, names, strategy, optimizer, problems);
        if (problems.Count > 0)
            throw new InvalidDataException($"checkpoint '{reader.Directory}' does not fit this engine: {string.Join("; ", problems)}" +
                (optimizerState ? " (pass loadOptimizerStates: false to load the weights only)" : ""));

        var states = OptimizerStateAccess.States(optimizer);
        foreach (var seg in strategy.Segments.Where(s => s.Length > 0))
            PrepareSegment(shards, seg, layout, names, states, optimizerState && m.Optimizer!.Reshardable, actions);
        if (optimizerState) PrepareOptimizerScalars(reader, optimizer, rank, actions);

        if (!options.ModuleOnly) PrepareRng(shards, rank, place, actions);
    }

    /// <summary>
    /// The RNG streams. On the saving layout each rank takes its own. On another, every rank takes the default stream of
    /// data-parallel rank 0 of the first shard it reads (every rank starts with the same default stream and draws from it
    /// alike within a stage), and the tracked model-parallel streams of that shard's tensor rank when the tensor size is
    /// unchanged; otherwise those stay as seeded (each tensor rank's stream of another split has no counterpart).
    /// </summary>
    private static void PrepareRng(ShardSet shards, int rank, CheckpointPlacement place, List<Action> actions)
    {
        var reader = shards.First;
        var file = shards.IsOwnShard ? reader.RankFile(rank) : reader.RankFile(0);
        if (file is not { HasRngState: true }) return;
        var tensors = reader.File(file.Name);
        if (tensors.TryGetValue("rng_state", out var state)) actions.Add(() => torch.set_rng_state(state));
        bool sameSplit = shards.IsOwnShard || (reader.Manifest.Topology?.Dim("model") ?? 1) == place.Topology.Dim("model");
        var streams = tensors.Where(t => t.Key.StartsWith(CheckpointPlacement.TrackerPrefix, StringComparison.Ordinal))
            .ToDictionary(t => t.Key[CheckpointPlacement.TrackerPrefix.Length..], t => t.Value);
        if (sameSplit && streams.Count > 0 && place.Rng is { } tracker)
            actions.Add(() => tracker.SetStates(streams.ToDictionary(s => s.Key, s => s.Value.clone().DetachFromDisposeScope())));
    }

    private static void PrepareSegment(ShardSet shards, StateSegment seg, FlatLayout layout, string[] names,
        Dictionary<IntPtr, OptimizerState> states, bool withState, List<Action> actions)
    {
        var state = states.GetValueOrDefault(seg.Optimized.Handle);
        var kinds = shards.First.Manifest.Optimizer?.StateKinds ?? [];
        var steps = new HashSet<long>();
        foreach (var (index, paramOffset, rangeOffset, count) in layout.Pieces(seg.FlatStart, seg.FlatStart + seg.Length))
        {
            if (!shards.TryFind(names[index], out var p)) continue; // non-strict: left as it is
            long target = seg.OptimizedOffset + rangeOffset;
            var master = p.Read("master", paramOffset, count);
            actions.Add(() => { using var d = seg.Optimized.detach().reshape(-1).narrow(0, target, count); d.copy_(master); });
            if (!withState || state == null) continue;
            foreach (var kind in kinds)
            {
                var values = p.Read(kind, paramOffset, count);
                actions.Add(() =>
                {
                    using var d = OptimizerStateAccess.TensorFor(state, kind, seg.Optimized).reshape(-1).narrow(0, target, count);
                    d.copy_(values);
                });
            }
            steps.UnionWith(p.Steps(paramOffset, count));
        }
        if (!withState || state == null || steps.Count == 0) return;
        if (steps.Count > 1)
            throw new InvalidDataException($"the parameters of flat range [{seg.FlatStart}, {seg.FlatStart + seg.Length}) have different optimizer step counts in the checkpoint ({string.Join(", ", steps.Order())}); " +
                                           "this strategy keeps one step count for them, so it cannot resume this state exactly");
        long step = steps.Single();
        actions.Add(() => OptimizerStateAccess.SetStep(state, step));
    }

    private static void CheckOptimizer(CheckpointManifest m, ShardSet shards, string[] names, ICheckpointableStrategy strategy, optim.Optimizer optimizer, List<string> problems)
    {
        var o = m.Optimizer!;
        // FusedAdam and the offloaded DeepSpeedCpuAdam keep the same state (exp_avg, exp_avg_sq, step), as in DeepSpeed,
        // so a checkpoint resumes with or without offload.
        bool sameAdam = optimizer is Optim.AdamOptimizerBase && o.Type is nameof(Optim.FusedAdam) or nameof(Optim.CpuAdam.DeepSpeedCpuAdam);
        if (o.Type != optimizer.GetType().Name && !sameAdam)
            problems.Add($"the checkpoint's optimizer state is for {o.Type}, this engine's optimizer is {optimizer.GetType().Name}");
        if (!o.Reshardable && (m.WorldSize != strategy.CheckpointGroup.Size || m.ZeroStage != strategy.Stage || !shards.IsOwnShard))
            problems.Add($"the optimizer state of {o.Type} was saved in its own binary form at world size {m.WorldSize}, ZeRO stage {m.ZeroStage}; " +
                         $"it loads only at that world size and stage (this run: {strategy.CheckpointGroup.Size}, stage {strategy.Stage})");
        if (o.Reshardable && OptimizerStateAccess.WhyNotReshardable(optimizer, strategy.Segments.Select(s => s.Optimized)) is { } why)
            problems.Add($"the checkpoint's optimizer state is stored per flat range, but this engine's optimizer cannot take it: {why}");
        var missing = names.Where(n => !shards.TryFind(n, out _)).ToList();
        if (missing.Count > 0) problems.Add($"optimizer state cannot be restored without the parameters {string.Join(", ", missing.Select(n => $"'{n}'"))}");
        int groups = optimizer.ParamGroups.Count();
        if (o.Lrs.Count != groups && o.Lrs.Distinct().Count() > 1)
            problems.Add($"the checkpoint has {o.Lrs.Count} parameter groups with different learning rates, this optimizer has {groups}");
    }

    private static void PrepareOptimizerScalars(ShardReader reader, optim.Optimizer optimizer, int rank, List<Action> actions)
    {
        var o = reader.Manifest.Optimizer!;
        var groups = optimizer.ParamGroups.ToList();
        actions.Add(() =>
        {
            for (int g = 0; g < groups.Count; g++) groups[g].LearningRate = o.Lrs.Count == groups.Count ? o.Lrs[g] : o.Lrs[0];
        });
        if (o.Reshardable) return;
        var file = reader.RankFile(rank) ?? throw new InvalidDataException($"checkpoint '{reader.Directory}' has no file of rank {rank}");
        if (!reader.File(file.Name).TryGetValue("optimizer_binary", out var bin))
            throw new InvalidDataException($"checkpoint file '{Path.Combine(reader.Directory, file.Name)}' has no optimizer_binary tensor");
        var bytes = bin.bytes.ToArray();
        actions.Add(() =>
        {
            using var r = new BinaryReader(new MemoryStream(bytes));
            ((OptimizerHelper)optimizer).load_state_dict(r);
        });
    }

    private static void PrepareModuleStates(ShardSet shards, nn.Module module, ICheckpointableStrategy strategy, LoadOptions options,
        List<string> problems, List<Action> actions)
    {
        var want = CheckpointNames.ModuleStates(module, strategy.Layout.Parameters.Select(p => p.Handle).ToHashSet());
        var have = shards.ModuleStates();
        foreach (var (name, t) in want)
        {
            if (!have.TryGetValue(name, out var src))
            {
                if (options.ModuleStrict) problems.Add($"buffer or frozen parameter '{name}' is missing from the checkpoint");
                continue;
            }
            if (!src.shape.SequenceEqual(t.shape)) { problems.Add($"'{name}' has shape [{string.Join(", ", src.shape)}] in the checkpoint, the model needs [{string.Join(", ", t.shape)}]"); continue; }
            actions.Add(() => t.copy_(src));
        }
        if (options.ModuleStrict && shards.IsOwnShard)
            problems.AddRange(have.Keys.Except(want.Keys).Order().Select(n => $"the checkpoint has buffer or frozen parameter '{n}' that the model lacks"));
    }
}
