using System.Globalization;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// Backend tuning a job may set for its ranks, read once with the rest of the launch environment
/// (<see cref="LaunchEnvironment.From"/>) and handed to the backends by the runtime: nothing below reads the environment.
/// </summary>
/// <param name="ShmSlotBytes">DSS_SHM_SLOT_BYTES: bytes per rank in each of the shm backend's collective slots (default 1 MiB; ≥ 4096, a multiple of 64).</param>
/// <param name="ShmSpinMicros">DSS_SHM_SPIN_US: how long an shm wait spins before it yields (default 50 µs; 0..1000000).</param>
/// <param name="MpiMaxCount">DSS_MPI_MAX_COUNT: the most elements one MPI call carries; larger operations are split (default int.MaxValue; ≥ 64).</param>
/// <param name="MpiLibrary">DSS_MPI_LIBRARY: the MPI library to load instead of searching for OpenMPI, then MPICH (null: search).</param>
public sealed record CommTuning(long ShmSlotBytes = 1 << 20, int ShmSpinMicros = 50, long MpiMaxCount = int.MaxValue, string? MpiLibrary = null)
{
    /// <summary>The defaults.</summary>
    public static CommTuning Default { get; } = new();

    /// <summary>Reads the DSS_SHM_* and DSS_MPI_* variables from <paramref name="env"/>; a bad value is a one-line error naming the variable.</summary>
    public static CommTuning From(Func<string, string?> env)
    {
        long? Number(string name, long min, long max, string requirement, long multiple = 1)
        {
            var v = env(name);
            if (string.IsNullOrEmpty(v)) return null;
            if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max || n % multiple != 0)
                throw new ArgumentException($"{name}={v}: must be {requirement}.");
            return n;
        }
        var d = Default;
        return new CommTuning(
            Number("DSS_SHM_SLOT_BYTES", 4096, long.MaxValue, "a byte count ≥ 4096 and a multiple of 64", 64) ?? d.ShmSlotBytes,
            (int)(Number("DSS_SHM_SPIN_US", 0, 1_000_000, "a number of microseconds in 0..1000000") ?? d.ShmSpinMicros),
            Number("DSS_MPI_MAX_COUNT", 64, int.MaxValue, $"an integer in 64..{int.MaxValue}") ?? d.MpiMaxCount,
            env("DSS_MPI_LIBRARY") is { Length: > 0 } lib ? lib : null);
    }
}
