using DeepSpeedSharp.Topology;
using DeepSpeedSharp.ActivationCheckpointing;
using DeepSpeedSharp.Config;
using static TorchSharp.torch;

namespace DeepSpeedSharp;

public static partial class DeepSpeed
{
    /// <summary>
    /// Activation checkpointing as DeepSpeed's module-level API (<c>deepspeed.checkpointing.configure</c>,
    /// <c>checkpoint</c>, <c>get_cuda_rng_tracker</c>, …): every member forwards to <see cref="Current"/>, the
    /// <see cref="ActivationCheckpointer"/> of the current engine. Before the first <see cref="Initialize"/> it is the
    /// instance the next engine adopts (so configuring before Initialize, as Megatron does, carries over); disposing an
    /// engine leaves a fresh one. Code that holds an engine can use <c>engine.ActivationCheckpointing</c> directly.
    /// </summary>
    public static class Checkpointing
    {
        /// <inheritdoc cref="ActivationCheckpointer.Current"/>
        public static ActivationCheckpointer Current => ActivationCheckpointer.Current;

        /// <inheritdoc cref="ActivationCheckpointer.Stats"/>
        public static SavedActivationStats Stats => Current.Stats;

        /// <inheritdoc cref="ActivationCheckpointer.Settings"/>
        public static CheckpointingSettings Settings => Current.Settings;

        /// <inheritdoc cref="ActivationCheckpointer.Mpu"/>
        public static IModelParallelUnit? Mpu => Current.Mpu;

        /// <inheritdoc cref="ActivationCheckpointer.WasUsed"/>
        public static bool WasUsed => Current.WasUsed;

        /// <inheritdoc cref="ActivationCheckpointer.Timings"/>
        public static IReadOnlyList<CheckpointTiming> Timings => Current.Timings;

        /// <inheritdoc cref="ActivationCheckpointer.Configure"/>
        public static void Configure(IModelParallelUnit? mpu, DeepSpeedConfig? deepspeedConfig = null, bool? partitionActivations = null,
            bool? contiguousCheckpointing = null, int? numCheckpoints = null, bool? checkpointInCpu = null, bool? synchronize = null, bool? profile = null) =>
            Current.Configure(mpu, deepspeedConfig, partitionActivations, contiguousCheckpointing, numCheckpoints, checkpointInCpu, synchronize, profile);

        /// <inheritdoc cref="ActivationCheckpointer.IsConfigured"/>
        public static bool IsConfigured() => Current.IsConfigured();

        /// <inheritdoc cref="ActivationCheckpointer.Reset"/>
        public static void Reset() => Current.Reset();

        /// <inheritdoc cref="ActivationCheckpointer.SetNumLayers"/>
        public static void SetNumLayers(int numLayers) => Current.SetNumLayers(numLayers);

        /// <inheritdoc cref="ActivationCheckpointer.PartitionActivationsInCheckpoint"/>
        public static void PartitionActivationsInCheckpoint(bool partitionActivations) => Current.PartitionActivationsInCheckpoint(partitionActivations);

        /// <inheritdoc cref="ActivationCheckpointer.Checkpoint(Func{Tensor, Tensor}, Tensor)"/>
        public static Tensor Checkpoint(Func<Tensor, Tensor> function, Tensor input) => Current.Checkpoint(function, input);

        /// <inheritdoc cref="ActivationCheckpointer.Checkpoint(Func{Tensor[], Tensor}, Tensor[])"/>
        public static Tensor Checkpoint(Func<Tensor[], Tensor> function, params Tensor[] inputs) => Current.Checkpoint(function, inputs);

        /// <inheritdoc cref="ActivationCheckpointer.Checkpoint(Func{Tensor[], Tensor[]}, Tensor[])"/>
        public static Tensor[] Checkpoint(Func<Tensor[], Tensor[]> function, params Tensor[] inputs) => Current.Checkpoint(function, inputs);

        /// <inheritdoc cref="ActivationCheckpointer.ThrowIfBackwardFailed"/>
        public static void ThrowIfBackwardFailed() => Current.ThrowIfBackwardFailed();

        /// <inheritdoc cref="ActivationCheckpointer.ModelParallelManualSeed"/>
        public static void ModelParallelManualSeed(long seed, IModelParallelUnit? mpu = null) => Current.ModelParallelManualSeed(seed, mpu);

        /// <inheritdoc cref="ActivationCheckpointer.GetRngTracker"/>
        public static RngStatesTracker GetRngTracker() => Current.GetRngTracker();

        /// <inheritdoc cref="ActivationCheckpointer.WarnIfConfiguredButUnused"/>
        public static bool WarnIfConfiguredButUnused(DeepSpeedConfig? config) => Current.WarnIfConfiguredButUnused(config);
    }
}
