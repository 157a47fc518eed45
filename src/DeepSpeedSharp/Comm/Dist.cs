namespace DeepSpeedSharp.Comm;

/// <summary>
/// The process-wide communication entry point (torch.distributed / deepspeed.comm): initialises the world group
/// from the launch environment and creates sub-groups.
/// </summary>
public static class Dist
{
    private static readonly object Lock = new();
    private static CommRuntime? _runtime;

    /// <summary>DeepSpeed's default timeout (10 minutes) unless DEEPSPEED_TIMEOUT (minutes) says otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Initialises the world from the environment (see <see cref="LaunchEnvironment"/>). Backend "shm", "tcp", "mpi",
    /// "hierarchical" or null/"auto": mpi when the ranks were started by mpirun and an MPI library is installed, else
    /// shm when all ranks share a host, tcp when every rank is on its own host, and hierarchical (shm inside hosts,
    /// tcp between them) otherwise. DeepSpeed's names nccl/gloo/ccl/hccl mean auto.
    /// Without WORLD_SIZE this is a world of one and needs no store. Calling it again returns the existing world.
    /// </summary>
    public static ProcessGroup Initialize(string? backend = null, TimeSpan? timeout = null) =>
        Initialize(LaunchEnvironment.FromEnvironment(), backend, timeout);

    /// <summary>Initialises from an explicit <see cref="LaunchEnvironment"/>.</summary>
    public static ProcessGroup Initialize(LaunchEnvironment env, string? backend = null, TimeSpan? timeout = null)
    {
        lock (Lock)
        {
            if (_runtime != null) return _runtime.World;
            var t = timeout ?? env.TimeoutOverride ?? DefaultTimeout;
            if (t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), $"timeout {t} must be positive.");
            _runtime = new CommRuntime(env, backend, t, env.HeartbeatTimeoutOverride ?? DefaultHeartbeatTimeout, Logger)
            {
                TimeoutFromEnvironment = timeout == null && env.TimeoutOverride != null,
            };
            return _runtime.World;
        }
    }

    /// <summary>How long a rank may send no heartbeat before the ranks waiting for it name it frozen (30 s).</summary>
    public static readonly TimeSpan DefaultHeartbeatTimeout = Liveness.PeerWatch.DefaultFrozenAfter;

    /// <summary>
    /// The collective timeout: how long an operation waits for ranks that are alive (still sending heartbeats) before it
    /// fails, naming the collective and sequence number each rank of the group is in.
    /// </summary>
    public static TimeSpan Timeout => Runtime.Timeout;

    /// <summary>
    /// How long a rank may send no heartbeat before the ranks waiting for it fail, naming it as frozen (stopped, or its
    /// host gone). Null for a world of one and under MPI, which have no heartbeats.
    /// </summary>
    public static TimeSpan? HeartbeatTimeout => Runtime.Heartbeats?.FrozenAfter;

    /// <summary>
    /// Changes the collective and heartbeat timeouts after initialisation (e.g. from the config's <c>distributed</c>
    /// section); null leaves one as it is. A value the environment set (DEEPSPEED_TIMEOUT, DSS_HEARTBEAT_TIMEOUT) wins
    /// over the config: <paramref name="fromConfig"/> true leaves those alone. Every rank should make the same call.
    /// Without heartbeats (one rank, MPI) it changes nothing: pass the timeout to Initialize there.
    /// </summary>
    public static void SetTimeouts(TimeSpan? collective, TimeSpan? heartbeat, bool fromConfig = false)
    {
        var rt = Runtime;
        if (rt.Heartbeats is not { } watch) return;
        if (collective is { } c && !(fromConfig && rt.TimeoutFromEnvironment)) watch.CollectiveTimeout = c;
        if (heartbeat is { } h && !(fromConfig && rt.Env.HeartbeatTimeoutOverride != null)) watch.FrozenAfter = h;
    }

    /// <summary>True after <see cref="Initialize(string?, TimeSpan?)"/> and before <see cref="Destroy"/>.</summary>
    public static bool IsInitialized { get { lock (Lock) return _runtime != null; } }

    /// <summary>The world group.</summary>
    public static ProcessGroup World => Runtime.World;

    /// <summary>This process's global rank.</summary>
    public static int Rank => Runtime.Env.Rank;

    /// <summary>Number of ranks.</summary>
    public static int WorldSize => Runtime.Env.WorldSize;

    /// <summary>Rank on this host.</summary>
    public static int LocalRank => Runtime.Env.LocalRank;

    /// <summary>Ranks on this host.</summary>
    public static int LocalWorldSize => Runtime.Env.LocalWorldSize;

    /// <summary>The backend chosen at initialisation.</summary>
    public static string Backend => Runtime.Backend;

    /// <summary>The host identity of every rank (DSS_HOST_ID or the machine name), indexed by global rank.</summary>
    public static IReadOnlyList<string> Hosts => Runtime.Hosts;

    /// <summary>The comms logger shared by all groups.</summary>
    public static CommsLogger Logger { get; } = new();

    /// <summary>
    /// Creates a group of the given global ranks (like torch.distributed.new_group): every rank of the world
    /// must call it with the same list, in the same order relative to other NewGroup calls. Ranks outside the
    /// list get a group with <see cref="ProcessGroup.IsMember"/> false.
    /// </summary>
    public static ProcessGroup NewGroup(IReadOnlyList<int> globalRanks) => NewGroup(globalRanks, null);

    /// <summary>
    /// <see cref="NewGroup(IReadOnlyList{int})"/> with a backend for the new group (torch's new_group(backend=...)):
    /// "shm" (members on one host), "tcp", "hierarchical", or null for the world's choice. In an MPI world every
    /// group uses MPI.
    /// </summary>
    public static ProcessGroup NewGroup(IReadOnlyList<int> globalRanks, string? backend)
    {
        ArgumentNullException.ThrowIfNull(globalRanks);
        var rt = Runtime;
        var ranks = globalRanks.Distinct().Order().ToArray();
        if (ranks.Length != globalRanks.Count) throw new ArgumentException($"NewGroup ranks contain duplicates: [{string.Join(",", globalRanks)}].");
        if (ranks.Length == 0) throw new ArgumentException("NewGroup needs at least one rank.");
        if (ranks[0] < 0 || ranks[^1] >= rt.Env.WorldSize)
            throw new ArgumentException($"NewGroup ranks [{string.Join(",", globalRanks)}] must lie in 0..{rt.Env.WorldSize - 1}.");
        lock (Lock) return rt.CreateGroup(ranks, backend);
    }

    /// <summary>
    /// Creates one group per entry of <paramref name="partition"/> (each rank in at most one entry; every rank calls
    /// this with the same partition) and returns the group holding this rank (a non-member group when none does).
    /// This is how a world is split by a topology (data-parallel groups, pipeline stages, hosts).
    /// </summary>
    public static ProcessGroup NewGroups(IReadOnlyList<IReadOnlyList<int>> partition)
    {
        ArgumentNullException.ThrowIfNull(partition);
        var seen = new HashSet<int>();
        foreach (var g in partition)
            foreach (var r in g)
                if (!seen.Add(r)) throw new ArgumentException($"NewGroups: rank {r} appears in more than one group.");
        ProcessGroup? mine = null;
        foreach (var g in partition)
        {
            var pg = NewGroup(g);
            if (pg.IsMember) mine = pg; else pg.Dispose();
        }
        return mine ?? new NonMemberProcessGroup([], Rank, Backend, Runtime.Timeout, Logger);
    }

    /// <summary>Splits the world into consecutive groups of <paramref name="groupSize"/> ranks (torch's new_subgroups).</summary>
    public static ProcessGroup NewSubgroups(int groupSize)
    {
        int world = WorldSize;
        if (groupSize <= 0 || world % groupSize != 0)
            throw new ArgumentException($"NewSubgroups: group size {groupSize} must divide the world size {world}.");
        return NewGroups(Enumerable.Range(0, world / groupSize).Select(g => (IReadOnlyList<int>)Enumerable.Range(g * groupSize, groupSize).ToArray()).ToArray());
    }

    /// <summary>Groups the ranks by host (DSS_HOST_ID or machine name) and returns this rank's host group.</summary>
    public static ProcessGroup NewHostGroup()
    {
        var hosts = Hosts;
        return NewGroups(hosts.Distinct().Select(h => (IReadOnlyList<int>)Enumerable.Range(0, hosts.Count).Where(r => hosts[r] == h).ToArray()).ToArray());
    }

    /// <summary>Tears down the world and the store (sub-groups should be disposed by their owners first).</summary>
    public static void Destroy()
    {
        lock (Lock)
        {
            _runtime?.Dispose();
            _runtime = null;
        }
    }

    internal static CommRuntime Runtime
    {
        get
        {
            lock (Lock)
                return _runtime ?? throw new InvalidOperationException("the distributed environment is not initialised: call Dist.Initialize() or DeepSpeed.InitDistributed() first.");
        }
    }
}
