using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Where this rank sits in a checkpoint: the job's ranks (which agree on and commit a tag together), this rank's
/// model-parallel rank (whose flat index space and file names it uses) and the topology recorded in the manifest.
/// The data-parallel rank is the strategy's <c>CheckpointGroup</c> rank.
/// </summary>
/// <param name="Job">Every rank of the job.</param>
/// <param name="MpRank">This rank's model-parallel rank.</param>
/// <param name="MpSize">Ranks per model replica (pipeline × tensor).</param>
/// <param name="Topology">Axes and sizes of the run.</param>
/// <param name="LayerNamed">True for a pipeline module, whose parameter names do not depend on the stage: a checkpoint of
/// another pipeline size then loads by name (see <see cref="ShardSet"/>).</param>
/// <param name="Rng">The model-parallel RNG streams (activation checkpointing's tracker) saved and restored beside the
/// default generator's state, or null.</param>
internal sealed record CheckpointPlacement(ProcessGroup Job, int MpRank, int MpSize, CheckpointTopology Topology, bool LayerNamed = false,
    ActivationCheckpointing.RngStatesTracker? Rng = null)
{
    /// <summary>The prefix of a tracked RNG stream's tensor in a rank's file (<c>rng_tracker.model-parallel-rng</c>).</summary>
    public const string TrackerPrefix = "rng_tracker.";

    /// <summary>Data parallelism only: the job is the data-parallel group.</summary>
    public static CheckpointPlacement DataParallel(ProcessGroup group) =>
        new(group, 0, 1, new CheckpointTopology(["pipe", "data", "model"], [1, group.Size, 1]));
}
