using System.Text.Json.Nodes;
using DeepSpeedSharp.Comm;
using TorchSharp.Modules;

namespace DeepSpeedSharp.Training;

/// <summary>
/// One piece of the world-size-independent flat index space that this rank's optimizer holds: flat elements
/// [<see cref="FlatStart"/>, <see cref="FlatStart"/> + <see cref="Length"/>) live in the optimized tensor
/// <see cref="Optimized"/> (a model parameter at stage 0, the fp32 master partition under ZeRO) starting at element
/// <see cref="OptimizedOffset"/>, and the optimizer's per-parameter state of <see cref="Optimized"/> is laid out the same way.
/// </summary>
internal sealed record StateSegment(long FlatStart, long Length, Parameter Optimized, long OptimizedOffset);

/// <summary>
/// What a training strategy tells the checkpoint code so that any strategy's state can be saved in, and loaded from,
/// the same representation: for every trainable parameter (in <see cref="Layout"/> order, unpadded) its fp32 value and
/// its optimizer state, as ranges of one flat index space. A per-parameter partitioning (ZeRO-3) describes itself with
/// one segment per owned parameter piece.
/// </summary>
internal interface ICheckpointableStrategy
{
    /// <summary>The ZeRO stage this strategy implements (recorded in the checkpoint).</summary>
    int Stage { get; }

    /// <summary>The data-parallel group whose ranks share the state.</summary>
    ProcessGroup CheckpointGroup { get; }

    /// <summary>The trainable parameters in flat order; <see cref="FlatLayout.Total"/> is the unpadded size.</summary>
    FlatLayout Layout { get; }

    /// <summary>The pieces of the flat space this rank's optimizer holds (clipped to the unpadded total).</summary>
    IReadOnlyList<StateSegment> Segments { get; }

    /// <summary>Whether this rank writes its segments (false where another rank holds an identical copy).</summary>
    bool WritesSegments { get; }

    /// <summary>
    /// Called on every rank after values were copied into the segments' tensors: makes them visible in the model
    /// (e.g. all-gathers ZeRO partitions into the parameters) and clears gradients. Collective.
    /// </summary>
    void AfterLoad();

    /// <summary>
    /// Extra JSON sections the strategy needs to resume exactly, by name (the precision work adds "loss_scaler"
    /// here). Empty when the strategy has none.
    /// </summary>
    JsonObject SaveExtraState();

    /// <summary>Restores sections written by <see cref="SaveExtraState"/> (absent sections leave defaults).</summary>
    void LoadExtraState(JsonObject sections);

    /// <summary>The engine's precision policy, whose loss-scaler state travels in the extra state.</summary>
    DeepSpeedSharp.Precision.PrecisionPolicy? Precision { get; set; }
}
