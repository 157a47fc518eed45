using DeepSpeedSharp.Training;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.DataParallel;

/// <summary>Checkpoint view of stage 0: every rank holds every parameter and its optimizer state; rank 0 writes them.</summary>
internal sealed partial class DataParallelStrategy : ICheckpointableStrategy
{
    private List<StateSegment>? segments;

    public int Stage => 0;

    public ProcessGroup CheckpointGroup => group;

    public FlatLayout Layout => layout;

    /// <summary>One segment per parameter: the optimizer works on the model's parameters themselves.</summary>
    public IReadOnlyList<StateSegment> Segments =>
        segments ??= layout.Parameters.Select((p, i) => new StateSegment(layout.Offsets[i], layout.Numels[i], p, 0)).ToList();

    /// <summary>All ranks hold identical copies, so only the group's first rank writes them.</summary>
    public bool WritesSegments => group.Rank == 0;

    /// <summary>Every rank read the full state itself: only the stale gradients are cleared.</summary>
    public void AfterLoad() => ZeroGrad();

    /// <summary>The precision state (the fp16 loss scaler), when the engine has one.</summary>
    public JsonObject SaveExtraState() => Precision?.SaveState() ?? new();

    /// <summary>Restores what <see cref="SaveExtraState"/> wrote.</summary>
    public void LoadExtraState(JsonObject sections) => Precision?.LoadState(sections);

    /// <summary>The engine's precision policy (set by the engine after the strategy is built).</summary>
    public DeepSpeedSharp.Precision.PrecisionPolicy? Precision { get; set; }
}
