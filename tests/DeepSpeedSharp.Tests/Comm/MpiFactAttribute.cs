using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>A fact that is skipped, with the reason shown in the test report, when mpirun is not installed.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when mpirun is absent.</summary>
    public MpiFactAttribute()
    {
        if (RankProcesses.MpirunPath == null) Skip = "mpirun not found: install openmpi-bin (as .ci/run does) to run the MPI backend tests.";
    }
}
