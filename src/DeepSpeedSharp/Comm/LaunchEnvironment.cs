using System.Globalization;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// The rank layout read from the environment the launcher set: torchrun/DeepSpeed (RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE or LOCAL_SIZE, MASTER_ADDR, MASTER_PORT), OpenMPI's mpirun (OMPI_COMM_WORLD_*) or PMI
/// (PMI_RANK, PMI_SIZE). Also DSS_JOB_TOKEN (hex), DSS_HOST_ID, DSS_LAUNCHER_PID, DEEPSPEED_TIMEOUT (minutes) and DSS_HEARTBEAT_TIMEOUT (seconds).
/// </summary>
public sealed record LaunchEnvironment
{
    /// <summary>Global rank.</summary>
    public int Rank { get; init; }
    /// <summary>Number of ranks.</summary>
    public int WorldSize { get; init; } = 1;
    /// <summary>Rank on this host.</summary>
    public int LocalRank { get; init; }
    /// <summary>Ranks on this host.</summary>
    public int LocalWorldSize { get; init; } = 1;
    /// <summary>Rendezvous address (MASTER_ADDR, default 127.0.0.1).</summary>
    public string MasterAddr { get; init; } = "127.0.0.1";
    /// <summary>Rendezvous port (MASTER_PORT, default 29500).</summary>
    public int MasterPort { get; init; } = 29500;
    /// <summary>The job's secret from DSS_JOB_TOKEN, or null.</summary>
    public byte[]? JobToken { get; init; }
    /// <summary>DSS_ALLOW_NO_TOKEN=1: a multi-rank store may run without a token.</summary>
    public bool AllowNoToken { get; init; }
    /// <summary>Host identity (DSS_HOST_ID, else the machine name).</summary>
    public string HostId { get; init; } = Environment.MachineName;
    /// <summary>True when the ranks were started by mpirun/mpiexec (OMPI_COMM_WORLD_* or PMI_*).</summary>
    public bool StartedByMpi { get; init; }
    /// <summary>DSS_LAUNCHER_PID: the pid of the <c>dss launch</c> process that started this rank (it dies with it), or null.</summary>
    public int? LauncherPid { get; init; }
    /// <summary>DEEPSPEED_TIMEOUT (minutes) when set: the collective timeout.</summary>
    public TimeSpan? TimeoutOverride { get; init; }
    /// <summary>DSS_HEARTBEAT_TIMEOUT (seconds) when set: how long a rank may send no heartbeat before it counts as frozen.</summary>
    public TimeSpan? HeartbeatTimeoutOverride { get; init; }

    /// <summary>Backend tuning (DSS_SHM_*, DSS_MPI_*).</summary>
    public CommTuning Tuning { get; init; } = CommTuning.Default;

    /// <summary>DSS_RESTART_COUNT: which restart of the job this is (0: its first run; <c>dss launch --max_restarts</c>).</summary>
    public int RestartCount { get; init; }

    /// <summary>Reads the process environment.</summary>
    public static LaunchEnvironment FromEnvironment() => From(Environment.GetEnvironmentVariable);

    /// <summary>Reads an environment given as a lookup (for tests).</summary>
    public static LaunchEnvironment From(Func<string, string?> env)
    {
        int? Int(string name)
        {
            var v = env(name);
            if (string.IsNullOrWhiteSpace(v)) return null;
            if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) || i < 0)
                throw new ArgumentException($"environment variable {name}='{v}' is not a non-negative integer.");
            return i;
        }
        bool ompi = env("OMPI_COMM_WORLD_SIZE") != null, pmi = env("PMI_SIZE") != null;
        int world = Int("WORLD_SIZE") ?? Int("OMPI_COMM_WORLD_SIZE") ?? Int("PMI_SIZE") ?? 1;
        int rank = Int("RANK") ?? Int("OMPI_COMM_WORLD_RANK") ?? Int("PMI_RANK") ?? 0;
        int localRank = Int("LOCAL_RANK") ?? Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? Int("MPI_LOCALRANKID") ?? rank;
        int localSize = Int("LOCAL_WORLD_SIZE") ?? Int("LOCAL_SIZE") ?? Int("OMPI_COMM_WORLD_LOCAL_SIZE") ?? Int("MPI_LOCALNRANKS") ?? world;
        if (world < 1) throw new ArgumentException($"WORLD_SIZE={world}: must be at least 1.");
        if (rank >= world) throw new ArgumentException($"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world}).");
        if (localRank >= localSize) throw new ArgumentException($"LOCAL_RANK={localRank} is outside 0..{localSize - 1} (LOCAL_WORLD_SIZE/LOCAL_SIZE={localSize}).");
        byte[]? token = null;
        var hex = env("DSS_JOB_TOKEN");
        if (!string.IsNullOrEmpty(hex))
        {
            try { token = Convert.FromHexString(hex); }
            catch (FormatException) { throw new ArgumentException("DSS_JOB_TOKEN must be a hex string (the launcher generates it)."); }
        }
        TimeSpan? timeout = null;
        var t = env("DEEPSPEED_TIMEOUT");
        if (!string.IsNullOrWhiteSpace(t))
        {
            if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var minutes) || !(minutes > 0) || minutes > 30 * 24 * 60)
                throw new ArgumentException($"DEEPSPEED_TIMEOUT='{Shorten(t)}' must be a positive number of minutes, at most 43200 (30 days).");
            timeout = TimeSpan.FromMinutes(minutes);
        }
        return new LaunchEnvironment
        {
            Rank = rank, WorldSize = world, LocalRank = localRank, LocalWorldSize = localSize,
            MasterAddr = env("MASTER_ADDR") is { Length: > 0 } a ? a : "127.0.0.1",
            MasterPort = Int("MASTER_PORT") ?? 29500,
            JobToken = token,
            AllowNoToken = env("DSS_ALLOW_NO_TOKEN") == "1",
            HostId = env("DSS_HOST_ID") is { Length: > 0 } h ? h : Environment.MachineName,
            StartedByMpi = ompi || pmi,
            TimeoutOverride = timeout,
            HeartbeatTimeoutOverride = Seconds(env, "DSS_HEARTBEAT_TIMEOUT"),
            LauncherPid = Int("DSS_LAUNCHER_PID") is > 0 and var pid ? pid : null,
            Tuning = CommTuning.From(env),
            RestartCount = Int("DSS_RESTART_COUNT") ?? 0,
        };
    }

    private static TimeSpan? Seconds(Func<string, string?> env, string name)
    {
        var v = env(name);
        if (string.IsNullOrWhiteSpace(v)) return null;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) || !(s > 0) || s > 1e6)
            throw new ArgumentException($"{name}='{Shorten(v)}' must be a positive number of seconds (at most 1000000).");
        return TimeSpan.FromSeconds(s);
    }

    /// <summary>A value as a message shows it: at most 64 characters, with the full length when cut.</summary>
    private static string Shorten(string v) => v.Length <= 64 ? v : $"{v[..64]}… ({v.Length} characters)";
}
