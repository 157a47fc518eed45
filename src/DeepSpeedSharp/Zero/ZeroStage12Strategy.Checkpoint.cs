using DeepSpeedSharp.Training;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Checkpoint view of stages 1–2: each rank holds the fp32 master and optimizer state of its partition
/// [r·P, (r+1)·P) of the flat space, clipped to the unpadded total, and writes exactly that range.
/// </summary>
internal sealed partial class ZeroStage12Strategy : ICheckpointableStrategy
{
    public int Stage => stage;

    public ProcessGroup CheckpointGroup => group;

    public IReadOnlyList<StateSegment> Segments
    {
        get
        {
            long start = layout.PartitionStart(group.Rank);
            long length = Math.Clamp(layout.Total - start, 0, layout.PartitionSize);
            return masterGroups.Split(0, length).Select(r => new StateSegment(start + r.Start, r.Length, r.Optimized, r.Offset)).ToList();
        }
    }

    public bool WritesSegments => true;

    /// <summary>All-gathers the loaded master partitions into the model's parameters and clears gradients.</summary>
    public void AfterLoad()
    {
        MasterReload.FromModelWeightsIfAsked(master, flatParams.dtype, loadFromFp32Weights);
        Publish();
        ZeroGrad();
    }

    /// <summary>The precision state (the fp16 loss scaler), when the engine has one.</summary>
    public JsonObject SaveExtraState() => Precision?.SaveState() ?? new();

    /// <summary>Restores what <see cref="SaveExtraState"/> wrote.</summary>
    public void LoadExtraState(JsonObject sections) => Precision?.LoadState(sections);

    /// <summary>The engine's precision policy (set by the engine after the strategy is built).</summary>
    public DeepSpeedSharp.Precision.PrecisionPolicy? Precision { get; set; }
}
