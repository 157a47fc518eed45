using DeepSpeedSharp.ActivationCheckpointing;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>Each test starts from a fresh activation-checkpointing state, as a new engine does after the previous one is
/// disposed: the previous state is released, and the fresh current one (what model code calling
/// <c>DeepSpeed.Checkpointing</c> reaches) is the test's <see cref="Ckpt"/>. The tests run in the non-parallel
/// "Checkpointing" collection, so no other test changes the current state meanwhile.</summary>
public abstract class CheckpointingTestBase
{
    protected CheckpointingTestBase() => StartAfresh();

    /// <summary>This test's state (the current one); <see cref="StartAfresh"/> replaces it.</summary>
    protected ActivationCheckpointer Ckpt { get; private set; } = null!;

    /// <summary>A fresh state, as the next engine would find after <c>engine.Dispose()</c>.</summary>
    protected void StartAfresh()
    {
        ActivationCheckpointer.Release(ActivationCheckpointer.Current);
        Ckpt = ActivationCheckpointer.Current;
    }
}
