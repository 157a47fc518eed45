using DeepSpeedSharp.ActivationCheckpointing;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Training;
using DeepSpeedSharp.Utils;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// DeepSpeed's <c>PipelineModule</c>: a model written as a sequence of layers, split into pipeline stages. Every rank
/// builds only the layers of its own stage (from <see cref="LayerSpec"/>s); layers of a <see cref="TiedLayerSpec"/> key
/// share one module per stage, whose weights are kept equal across stages. Pass it to <see cref="DeepSpeed.Initialize"/>
/// to get a <c>PipelineEngine</c>, which trains it with <c>TrainBatch</c>.
/// <para>Parameters are named by layer index as in DeepSpeed (<c>3.attn.c_attn.weight</c>; tied modules
/// <c>tied_modules.KEY.weight</c>). <see cref="forward"/> runs this stage's layers only.</para>
/// </summary>
public sealed class PipelineModule : nn.Module<Tensor, Tensor>, IModelNameMap
{
    private readonly record struct LocalLayer(int Index, Func<Tensor, Tensor> Forward, bool HasParameters, nn.Module Module);

    private readonly List<List<LocalLayer>> chunks = new();
    private readonly Dictionary<string, nn.Module> tiedModules = new(StringComparer.Ordinal);
    private readonly bool ownsGrid;
    private readonly Func<Func<Tensor, Tensor>, Tensor, Tensor> checkpointFunction;
    private long microOffset;

    /// <summary>
    /// Splits <paramref name="layers"/> into <paramref name="numStages"/> stages over the whole world, the remaining
    /// factor being data parallelism (DeepSpeed's <c>PipeDataParallelTopology(num_stages, world / num_stages)</c>).
    /// </summary>
    public PipelineModule(IEnumerable<LayerSpec> layers, int numStages, Func<Tensor, Tensor, Tensor>? lossFn = null,
        string partitionMethod = "parameters", int activationCheckpointInterval = 0, bool seedLayers = false, int baseSeed = 1234,
        Func<Func<Tensor, Tensor>, Tensor, Tensor>? activationCheckpointFunc = null, int virtualStages = 1)
        : this(layers, GridFor(numStages), ownsGrid: true, lossFn, partitionMethod, activationCheckpointInterval, seedLayers, baseSeed, activationCheckpointFunc, virtualStages)
    {
    }

    /// <summary>Splits <paramref name="layers"/> over the pipe axis of <paramref name="topology"/> (e.g. a <see cref="PipeModelDataParallelTopology"/>).</summary>
    public PipelineModule(IEnumerable<LayerSpec> layers, ProcessTopology topology, Func<Tensor, Tensor, Tensor>? lossFn = null,
        string partitionMethod = "parameters", int activationCheckpointInterval = 0, bool seedLayers = false, int baseSeed = 1234,
        Func<Func<Tensor, Tensor>, Tensor, Tensor>? activationCheckpointFunc = null, int virtualStages = 1)
        : this(layers, new PipelineParallelGrid(topology), ownsGrid: true, lossFn, partitionMethod, activationCheckpointInterval, seedLayers, baseSeed, activationCheckpointFunc, virtualStages)
    {
    }

    /// <summary>
    /// Splits <paramref name="layers"/> over <paramref name="grid"/>'s stages — the form to use with tensor parallelism, whose
    /// layers need the same grid for their groups. The caller keeps ownership of the grid.
    /// </summary>
    public PipelineModule(IEnumerable<LayerSpec> layers, PipelineParallelGrid grid, Func<Tensor, Tensor, Tensor>? lossFn = null,
        string partitionMethod = "parameters", int activationCheckpointInterval = 0, bool seedLayers = false, int baseSeed = 1234,
        Func<Func<Tensor, Tensor>, Tensor, Tensor>? activationCheckpointFunc = null, int virtualStages = 1)
        : this(layers, grid, ownsGrid: false, lossFn, partitionMethod, activationCheckpointInterval, seedLayers, baseSeed, activationCheckpointFunc, virtualStages)
    {
    }

    private PipelineModule(IEnumerable<LayerSpec> layers, PipelineParallelGrid grid, bool ownsGrid, Func<Tensor, Tensor, Tensor>? lossFn,
        string partitionMethod, int activationCheckpointInterval, bool seedLayers, int baseSeed,
        Func<Func<Tensor, Tensor>, Tensor, Tensor>? activationCheckpointFunc, int virtualStages) : base(nameof(PipelineModule))
    {
        ArgumentNullException.ThrowIfNull(layers);
        Grid = grid ?? throw new ArgumentNullException(nameof(grid));
        this.ownsGrid = ownsGrid;
        try
        {
            Specs = layers.ToList();
            if (Specs.Count == 0) throw new ArgumentException("a pipeline module needs at least one layer", nameof(layers));
            if (Specs.Any(s => s is null)) throw new ArgumentException("the layer list contains null", nameof(layers));
            if (activationCheckpointInterval < 0)
                throw new ArgumentOutOfRangeException(nameof(activationCheckpointInterval), $"activation_checkpoint_interval must be ≥ 0 (0 = off), got {activationCheckpointInterval}");
            if (virtualStages < 1) throw new ArgumentOutOfRangeException(nameof(virtualStages), $"virtual stages per rank must be ≥ 1, got {virtualStages}");
            VirtualStages = virtualStages;
            if (Specs.Count < NumStages * virtualStages)
                throw new ArgumentException($"{Specs.Count} layers cannot fill {NumStages} pipeline stages × {virtualStages} virtual stages: every part needs at least one layer");
            LossFn = lossFn;
            PartitionMethod = partitionMethod;
            ActivationCheckpointInterval = activationCheckpointInterval;
            SeedLayers = seedLayers;
            BaseSeed = baseSeed;
            checkpointFunction = activationCheckpointFunc ?? ((f, x) => ActivationCheckpointer.Current.Checkpoint(f, x));
            Parts = Partition(partitionMethod);
            BuildLocalLayers();
            Tied = new TiedWeights(grid, Specs, StageOfLayer, tiedModules);
            Tied.Synchronize();
            if (grid.GlobalRank == 0) Log.Info(Describe());
        }
        catch
        {
            if (ownsGrid) grid.Dispose();
            throw;
        }
    }

    /// <summary>The topology the module is split on; it is also the engine's mpu.</summary>
    public PipelineParallelGrid Grid { get; }

    /// <summary>
    /// The unsplit model's name of each parameter and buffer, by this module's layer-index name (e.g.
    /// <c>3.self_attn.q_proj.weight</c> → <c>model.layers.2.self_attn.q_proj.weight</c>); null (the default) when the
    /// layer-index names are the only ones. Checkpoints record these names, so <c>dss checkpoint export</c> writes the
    /// unsplit model's tensors, and <c>WholeModelWeights</c> uses them when no name map is given.
    /// </summary>
    public IReadOnlyDictionary<string, string>? ModelNames { get; set; }

    /// <inheritdoc/>
    string? IModelNameMap.ModelNameOf(string name) => ModelNames?.GetValueOrDefault(name);

    /// <summary>DeepSpeed's <c>mpu()</c>: the grid.</summary>
    public IModelParallelUnit Mpu() => Grid;

    /// <summary>Every layer of the pipeline, in order.</summary>
    public IReadOnlyList<LayerSpec> Specs { get; }

    /// <summary>Pipeline stages.</summary>
    public int NumStages => Grid.PipeParallelSize;

    /// <summary>This rank's stage.</summary>
    public int StageId => Grid.StageId;

    /// <summary>
    /// Virtual stages per rank (Megatron's <c>virtual_pipeline_model_parallel_size</c>; beyond DeepSpeed): with v &gt; 1 the
    /// layers are split into stages × v parts and rank s holds parts s, s + stages, …, run by the interleaved schedule.
    /// </summary>
    public int VirtualStages { get; }

    /// <summary>Part boundaries: part j owns layers [Parts[j], Parts[j+1]) (DeepSpeed's <c>parts</c>); part j is on stage
    /// j mod stages, as its chunk j / stages.</summary>
    public IReadOnlyList<int> Parts { get; }

    /// <summary>The first layer of this stage (of its first chunk with virtual stages).</summary>
    public int LocalStart => Parts[StageId];

    /// <summary>One past the last layer of this stage (of its first chunk with virtual stages).</summary>
    public int LocalStop => Parts[StageId + 1];

    /// <summary>The stage holding layer <paramref name="layer"/> (with virtual stages, the stage of the part holding it).</summary>
    public int StageOfLayer(int layer) => TiedWeights.StageOf(Parts, layer) % NumStages;

    /// <summary>The layer range [Start, Stop) of each of this stage's chunks.</summary>
    public IReadOnlyList<(int Start, int Stop)> LocalRanges =>
        Enumerable.Range(0, VirtualStages).Select(c => (Parts[c * NumStages + StageId], Parts[c * NumStages + StageId + 1])).ToList();

    /// <summary>The chunk <see cref="forward"/> runs (set by the engine for the interleaved schedule).</summary>
    internal int ActiveChunk { get; set; }

    /// <summary>The loss computed on the last stage from its output and the labels.</summary>
    public Func<Tensor, Tensor, Tensor>? LossFn { get; }

    /// <summary>How the layers were split (<c>parameters</c>, <c>uniform</c> or <c>type:REGEX</c>).</summary>
    public string PartitionMethod { get; }

    /// <summary>Layers per activation-checkpoint segment; 0 = off. The config's <c>pipeline.activation_checkpoint_interval</c>,
    /// when positive, replaces it (as DeepSpeed's PipelineEngine does).</summary>
    public int ActivationCheckpointInterval { get; internal set; }

    /// <summary>Whether each layer is built, and runs, under its own seed (<see cref="BaseSeed"/> + layer index).</summary>
    public bool SeedLayers { get; }

    /// <summary>The seed base for <see cref="SeedLayers"/>.</summary>
    public int BaseSeed { get; }

    /// <summary>The weights this stage shares with other stages.</summary>
    internal TiedWeights Tied { get; }

    /// <summary>This stage's layers: their index in the pipeline and the module computing them (a tied layer's shared module).</summary>
    public IEnumerable<(int Index, nn.Module Module)> LocalLayers() => chunks.SelectMany(c => c).Select(l => (l.Index, l.Module));

    /// <summary>This stage's tied modules by key.</summary>
    internal IReadOnlyDictionary<string, nn.Module> TiedModules => tiedModules;

    /// <summary>Runs this stage's layers (of its active chunk), in segments of <see cref="ActivationCheckpointInterval"/> layers when set (and training).</summary>
    public override Tensor forward(Tensor input)
    {
        microOffset++;
        var local = chunks[ActiveChunk];
        if (ActivationCheckpointInterval == 0 || !training) return Run(local, 0, local.Count, input);
        var x = input;
        for (int start = 0; start < local.Count; start += ActivationCheckpointInterval)
        {
            int from = start, to = Math.Min(local.Count, start + ActivationCheckpointInterval);
            // As DeepSpeed: segments without parameters are not worth checkpointing. Nor is a segment whose input carries no
            // gradient (e.g. token ids into the embedding): a recomputed segment returns gradients only through its input.
            x = local.Skip(from).Take(to - from).Any(l => l.HasParameters) && x.requires_grad
                ? checkpointFunction(y => Run(local, from, to, y), x)
                : Run(local, from, to, x);
        }
        return x;
    }

    private Tensor Run(List<LocalLayer> local, int from, int to, Tensor x)
    {
        for (int i = from; i < to; i++)
        {
            // DeepSpeed reseeds before each layer so that dropout masks do not depend on the partition.
            if (SeedLayers) manual_seed(BaseSeed * microOffset + local[i].Index);
            x = local[i].Forward(x);
        }
        return x;
    }

    /// <summary>The partition, one line per stage with its layers (printed at start on rank 0).</summary>
    public string Describe()
    {
        var lines = new List<string> { $"pipeline partition ({PartitionMethod}) of {Specs.Count} layers over {NumStages} stages" +
                                         (VirtualStages > 1 ? $" × {VirtualStages} virtual stages:" : ":") };
        for (int j = 0; j < Parts.Count - 1; j++)
        {
            lines.Add($"stage={j % NumStages}{(VirtualStages > 1 ? $" chunk={j / NumStages}" : "")} layers={Parts[j + 1] - Parts[j]}");
            for (int i = Parts[j]; i < Parts[j + 1]; i++) lines.Add($"    {i,2}: {Specs[i].TypeName}");
        }
        if (LossFn != null) lines.Add($"  loss: {FunctionName(LossFn)}");
        return string.Join('\n', lines);
    }

    /// <summary>"LossFunctions.CrossEntropy", or "a lambda in Program.Main" for a compiler-generated method.</summary>
    internal static string FunctionName(Delegate d)
    {
        var m = d.Method;
        var type = m.DeclaringType;
        while (type is { Name: ['<', ..] }) type = type.DeclaringType;
        return m.Name.StartsWith('<') && m.Name.IndexOf('>') is > 1 and var end
            ? $"a lambda in {type?.Name}.{m.Name[1..end]}"
            : $"{type?.Name}.{m.Name}";
    }

    private int[] Partition(string method)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(method, nameof(PartitionMethod));
        string m = method.ToLowerInvariant();
        var counts = m == "parameters" ? Specs.Select(s => s.TrainableParameterCount).ToArray() : new long[Specs.Count];
        var types = m.StartsWith("type:", StringComparison.Ordinal) ? Specs.Select(s => s.TypeName).ToArray() : new string[Specs.Count];
        var parts = LayerPartition.Compute(method, counts, types, NumStages * VirtualStages);
        for (int j = 0; j < parts.Length - 1; j++)
            if (parts[j + 1] <= parts[j])
                throw new ArgumentException($"partition method '{method}' leaves part {j} (stage {j % NumStages}) without layers (boundaries [{string.Join(", ", parts)}]); " +
                                            "use fewer stages or the 'uniform' method");
        return parts;
    }

    private void BuildLocalLayers()
    {
        foreach (var (start, stop) in LocalRanges)
        {
            var local = new List<LocalLayer>();
            chunks.Add(local);
            for (int i = start; i < stop; i++) BuildLayer(i, local);
        }
        if (tiedModules.Count > 0) register_module("tied_modules", new TiedModuleContainer(tiedModules));
    }

    private void BuildLayer(int i, List<LocalLayer> local)
    {
        {
            if (SeedLayers) manual_seed(BaseSeed + i);
            var spec = Specs[i];
            if (spec is TiedLayerSpec tied)
            {
                if (!tiedModules.TryGetValue(tied.Key, out var shared))
                    tiedModules[tied.Key] = shared = tied.Build();
                var module = (nn.Module<Tensor, Tensor>)shared;
                var fn = tied.ForwardFn;
                local.Add(new LocalLayer(i, fn == null ? x => module.call(x) : x => fn(module, x), module.parameters().Any(), module));
            }
            else
            {
                var module = spec.Build();
                register_module(i.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
                local.Add(new LocalLayer(i, x => module.call(x), module.parameters().Any(), module));
            }
        }
    }

    private static PipelineParallelGrid GridFor(int numStages)
    {
        if (!Dist.IsInitialized) Dist.Initialize();
        int world = Dist.WorldSize;
        if (numStages < 1 || world % numStages != 0)
            throw new ArgumentException($"num_stages {numStages} must be ≥ 1 and divide the world size {world} (the rest is data parallelism)");
        return new PipelineParallelGrid(new PipeDataParallelTopology(numStages, world / numStages));
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Tied.Dispose();
            if (ownsGrid) Grid.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>Holds the tied modules under their keys (<c>tied_modules.KEY.*</c>), as DeepSpeed's <c>ModuleDict</c>.</summary>
internal sealed class TiedModuleContainer : nn.Module
{
    public TiedModuleContainer(IReadOnlyDictionary<string, nn.Module> modules) : base("tied_modules")
    {
        foreach (var (key, module) in modules) register_module(key, module);
    }
}
