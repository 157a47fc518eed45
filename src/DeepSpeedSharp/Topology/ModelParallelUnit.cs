using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// An <see cref="IModelParallelUnit"/> over two given groups, or built from the world with Megatron's layout
/// (<see cref="FromWorld"/>): model-parallel groups are blocks of consecutive ranks, data-parallel groups take one
/// rank from each block — the tensor × data layout of <see cref="PipelineParallelGrid"/>, which builds them.
/// </summary>
public sealed class ModelParallelUnit : IModelParallelUnit, IDisposable
{
    private readonly ProcessGroup _modelParallel;
    private readonly ProcessGroup _dataParallel;
    private readonly IDisposable? _owner;

    /// <summary>Wraps existing groups (this process must be a member of both; the caller keeps ownership).</summary>
    public ModelParallelUnit(ProcessGroup modelParallelGroup, ProcessGroup dataParallelGroup)
        : this(modelParallelGroup, dataParallelGroup, owner: null) { }

    private ModelParallelUnit(ProcessGroup modelParallelGroup, ProcessGroup dataParallelGroup, IDisposable? owner)
    {
        ArgumentNullException.ThrowIfNull(modelParallelGroup);
        ArgumentNullException.ThrowIfNull(dataParallelGroup);
        if (!modelParallelGroup.IsMember)
            throw new ArgumentException($"global rank {modelParallelGroup.GlobalRank} is not a member of the given model-parallel group (members: {string.Join(",", modelParallelGroup.GlobalRanks)}).", nameof(modelParallelGroup));
        if (!dataParallelGroup.IsMember)
            throw new ArgumentException($"global rank {dataParallelGroup.GlobalRank} is not a member of the given data-parallel group (members: {string.Join(",", dataParallelGroup.GlobalRanks)}).", nameof(dataParallelGroup));
        _modelParallel = modelParallelGroup;
        _dataParallel = dataParallelGroup;
        _owner = owner;
    }

    /// <summary>
    /// Splits the initialised world (<see cref="Dist.Initialize(string?, TimeSpan?)"/>) into model-parallel groups of
    /// <paramref name="modelParallelSize"/> consecutive ranks and the matching data-parallel groups. Every rank must
    /// call it. The returned unit owns (and disposes) the groups it created.
    /// </summary>
    public static ModelParallelUnit FromWorld(int modelParallelSize)
    {
        int world = Dist.WorldSize;
        if (modelParallelSize < 1 || world % modelParallelSize != 0)
            throw new ArgumentException($"model-parallel size {modelParallelSize} must be at least 1 and divide the world size {world}.", nameof(modelParallelSize));
        var grid = PipelineParallelGrid.Create(pipelineParallelSize: 1, tensorParallelSize: modelParallelSize);
        return new ModelParallelUnit(grid.GetTensorModelParallelGroup(), grid.GetDataParallelGroup(), owner: grid);
    }

    /// <inheritdoc/>
    public ProcessGroup GetModelParallelGroup() => _modelParallel;

    /// <inheritdoc/>
    public int GetModelParallelRank() => _modelParallel.Rank;

    /// <inheritdoc/>
    public int GetModelParallelWorldSize() => _modelParallel.Size;

    /// <inheritdoc/>
    public ProcessGroup GetDataParallelGroup() => _dataParallel;

    /// <inheritdoc/>
    public int GetDataParallelRank() => _dataParallel.Rank;

    /// <inheritdoc/>
    public int GetDataParallelWorldSize() => _dataParallel.Size;

    /// <summary>Disposes the groups when <see cref="FromWorld"/> created them.</summary>
    public void Dispose() => _owner?.Dispose();
}
