using System.Text.Json.Nodes;
using DeepSpeedSharp.Checkpoint;
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
            return new[] { new StateSegment(start, length, master, 0) };
        }
    }

    public bool WritesSegments => true;

    /// <summary>All-gathers the loaded master partitions into the model's parameters and clears gradients.</summary>
    public void AfterLoad()
    {
        Publish();
        ZeroGrad();
    }

    /// <summary>Stages 1–2 keep no state beyond master partitions and optimizer.</summary>
    public JsonObject SaveExtraState() => new();

    /// <summary>Nothing to restore: see <see cref="SaveExtraState"/>.</summary>
    public void LoadExtraState(JsonObject sections) { }
}
