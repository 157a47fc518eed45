namespace DeepSpeedSharp.ActivationCheckpointing;

/// <summary>
/// The effective activation-checkpointing options after <see cref="DeepSpeed.Checkpointing.Configure"/> (the
/// <c>activation_checkpointing</c> config section with explicit arguments applied over it).
/// </summary>
/// <param name="PartitionActivations">Split each checkpoint's saved inputs across the model-parallel group.</param>
/// <param name="CpuCheckpointing">Keep the saved (partitioned) inputs in host memory.</param>
/// <param name="ContiguousMemoryOptimization">Copy the saved partitions into one preallocated buffer per input position.</param>
/// <param name="NumberCheckpoints">Checkpoints per forward pass (buffer capacity for the contiguous optimisation).</param>
/// <param name="SynchronizeCheckpointBoundary">Synchronise the device at the start and end of every checkpoint's forward and backward.</param>
/// <param name="Profile">Log forward and recompute/backward times of every checkpoint.</param>
public sealed record CheckpointingSettings(
    bool PartitionActivations = false,
    bool CpuCheckpointing = false,
    bool ContiguousMemoryOptimization = false,
    int? NumberCheckpoints = null,
    bool SynchronizeCheckpointBoundary = false,
    bool Profile = false)
{
    /// <summary>DeepSpeed's defaults: every option off.</summary>
    public static CheckpointingSettings Defaults { get; } = new();

    /// <summary>
    /// Throws <see cref="ArgumentException"/> for combinations DeepSpeed rejects or ignores: contiguous memory and
    /// CPU checkpointing only work on partitioned activations, and the contiguous buffer needs number_checkpoints.
    /// </summary>
    public void Validate()
    {
        if (ContiguousMemoryOptimization && !PartitionActivations)
            throw new ArgumentException("activation_checkpointing.contiguous_memory_optimization=true needs partition_activations=true " +
                                        "(the contiguous buffer holds partitioned activations); set partition_activations or turn contiguous_memory_optimization off.");
        if (ContiguousMemoryOptimization && NumberCheckpoints == null)
            throw new ArgumentException("activation_checkpointing.contiguous_memory_optimization=true needs number_checkpoints (the number of Checkpoint calls " +
                                        "per forward pass, used to size the buffer); set it in the config or pass numCheckpoints to Configure.");
        if (NumberCheckpoints is < 1)
            throw new ArgumentException($"activation_checkpointing.number_checkpoints must be at least 1, got {NumberCheckpoints}.");
        if (CpuCheckpointing && !PartitionActivations)
            throw new ArgumentException("activation_checkpointing.cpu_checkpointing=true needs partition_activations=true (as in DeepSpeed, saved inputs " +
                                        "are moved to host memory only when they are partitioned); set partition_activations or turn cpu_checkpointing off.");
    }

    /// <summary>One line for the log.</summary>
    public override string ToString() =>
        $"partition_activations={PartitionActivations} cpu_checkpointing={CpuCheckpointing} contiguous_memory_optimization={ContiguousMemoryOptimization} " +
        $"number_checkpoints={(NumberCheckpoints?.ToString() ?? "null")} synchronize_checkpoint_boundary={SynchronizeCheckpointBoundary} profile={Profile}";
}
