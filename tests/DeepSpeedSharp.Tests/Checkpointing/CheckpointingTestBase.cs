using Ckpt = DeepSpeedSharp.DeepSpeed.Checkpointing;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>Tests of the process-wide checkpointing settings start and end from a clean configuration.</summary>
public abstract class CheckpointingTestBase : IDisposable
{
    protected CheckpointingTestBase() => Ckpt.ResetAllForTests();

    public void Dispose()
    {
        Ckpt.ResetAllForTests();
        GC.SuppressFinalize(this);
    }
}
