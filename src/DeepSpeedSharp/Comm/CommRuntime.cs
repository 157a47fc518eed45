using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DeepSpeedSharp.Comm.Core;
using DeepSpeedSharp.Comm.Hierarchical;
using DeepSpeedSharp.Comm.Liveness;
using DeepSpeedSharp.Comm.Mpi;
using DeepSpeedSharp.Comm.Shm;
using DeepSpeedSharp.Comm.Store;
using DeepSpeedSharp.Comm.Tcp;

namespace DeepSpeedSharp.Comm;

/// <summary>State behind <see cref="Dist"/>: the launch environment, the store, and how to build groups.</summary>
internal sealed class CommRuntime : IDisposable
{
    private readonly TcpStoreServer? _server;
    private int _nextGroupId;
    private readonly TimeSpan _timeout;

    /// <summary>True when the code passed no timeout and DEEPSPEED_TIMEOUT gave one (the config then leaves it alone).</summary>
    public bool TimeoutFromEnvironment { get; init; }

    public CommRuntime(LaunchEnvironment env, string? backend, TimeSpan timeout, TimeSpan heartbeatTimeout, CommsLogger logger)
    {
        LauncherWatch.Arm(env); // first: a rank whose launcher is killed must not train on as an orphan
        UnhandledErrors.Arm(env);
        Env = env;
        _timeout = timeout;
        Logger = logger;
        if (env.WorldSize == 1)
        {
            Backend = "single";
            Hosts = [env.HostId];
            World = new SingleProcessGroup(0, timeout, logger);
            return;
        }
        string requested = Normalize(backend);
        if (requested == "mpi" || (requested == "auto" && env.StartedByMpi && MpiLibrary.TryLoad(env.Tuning.MpiLibrary) != null))
        {
            var mpi = MpiLibrary.TryLoad(env.Tuning.MpiLibrary) ?? throw new InvalidOperationException($"rank {env.Rank}: backend 'mpi' was asked for but {MpiLibrary.LoadError}");
            if (!env.StartedByMpi)
                throw new InvalidOperationException($"rank {env.Rank}: backend 'mpi' needs ranks started by mpirun/mpiexec (OMPI_COMM_WORLD_* or PMI_* in the environment); with `dss launch` or torchrun use shm or tcp.");
            Backend = "mpi";
            var world = MpiProcessGroup.CreateWorld(mpi, env.WorldSize, env.Rank, timeout, logger, env.Tuning.MpiMaxCount);
            World = world;
            Hosts = world.AllGatherStrings(env.HostId);
            world.SetHosts(Hosts);
            return;
        }
        var token = env.JobToken;
        if (token == null)
        {
            if (!env.AllowNoToken)
                throw new InvalidOperationException($"rank {env.Rank}: DSS_JOB_TOKEN is not set. The launcher (`dss launch`) sets this secret so that only the job's ranks can join the rendezvous store; set DSS_ALLOW_NO_TOKEN=1 to run a multi-rank job without it.");
            token = [];
        }
        Token = token;
        var addr = TcpStoreClient.Resolve(env.MasterAddr);
        try
        {
            if (env.Rank == 0) _server = new TcpStoreServer(addr, env.MasterPort, token);
            Store = new TcpStoreClient(addr, env.MasterPort, token, timeout, env.Rank);
            LocalAddress = Store.LocalAddress;
            Store.Set($"host/{env.Rank}", env.HostId);
            // With a token the job id is derived from it, so the launcher knows the names of the job's shared-memory files.
            if (token.Length > 0) JobId = ShmJobFiles.JobIdOf(token);
            else
            {
                if (env.Rank == 0) Store.Set("job/id", Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant());
                JobId = Store.GetString("job/id");
            }
            Hosts = Enumerable.Range(0, env.WorldSize).Select(r => Store.GetString($"host/{r}")).ToArray();
            // Heartbeats on a connection of their own, so a beat never waits behind a blocking GET.
            Heartbeats = new PeerWatch(new TcpStoreClient(addr, env.MasterPort, token, timeout, env.Rank), env.Rank, timeout, heartbeatTimeout);
        }
        catch
        {
            Heartbeats?.Dispose();
            Store?.Dispose();
            _server?.Dispose();
            throw;
        }
        var all = Enumerable.Range(0, env.WorldSize).ToArray();
        Backend = Resolve(requested, all);
        World = CreateGroup(all, Backend);
    }

    private ProcessGroup WithHosts(ProcessGroup group, int groupId)
    {
        group.GroupId = groupId;
        group.SetHosts(Hosts);
        group.Heartbeats = Heartbeats;
        return group;
    }

    private static string Normalize(string? backend) => (backend ?? "auto").ToLowerInvariant() switch
    {
        "auto" or "" or "nccl" or "gloo" or "ccl" or "hccl" => "auto",
        "shm" or "tcp" or "mpi" or "hierarchical" => backend!.ToLowerInvariant(),
        var other => throw new ArgumentException($"unknown communication backend '{other}'; use shm, tcp, mpi, hierarchical or leave it unset (auto)."),
    };

    /// <summary>The backend a group of <paramref name="ranks"/> uses: auto/hierarchical become shm on one host, tcp when every rank is on its own host, else hierarchical.</summary>
    private string Resolve(string requested, int[] ranks)
    {
        var hosts = ranks.Select(r => Hosts[r]).ToArray();
        int distinct = hosts.Distinct().Count();
        return requested switch
        {
            "auto" or "hierarchical" => distinct == 1 ? "shm" : distinct == ranks.Length ? "tcp" : "hierarchical",
            "shm" when distinct > 1 => throw new ArgumentException($"backend 'shm' needs all ranks of the group on one host, but ranks [{string.Join(",", ranks)}] report hosts {string.Join(", ", hosts.Distinct())}; use 'tcp', 'hierarchical' or leave the backend unset."),
            "mpi" => throw new ArgumentException("backend 'mpi' is only available when the world was initialised with it (ranks started by mpirun/mpiexec)."),
            _ => requested,
        };
    }

    public LaunchEnvironment Env { get; }
    /// <summary>The collective timeout (the heartbeat watch's when there is one: it can be changed after start).</summary>
    public TimeSpan Timeout => Heartbeats?.CollectiveTimeout ?? _timeout;
    /// <summary>The heartbeat watch that tells frozen ranks from slow ones (null for one rank and under MPI).</summary>
    public PeerWatch? Heartbeats { get; }
    public CommsLogger Logger { get; }
    public string Backend { get; }
    public string[] Hosts { get; }
    public byte[] Token { get; } = [];
    public string JobId { get; } = "single";
    public TcpStoreClient? Store { get; }
    public IPAddress LocalAddress { get; } = IPAddress.Loopback;
    public ProcessGroup World { get; } = null!;

    /// <summary>
    /// Creates a group; collective over the world (every rank calls it with the same ranks and backend, in the same
    /// order). <paramref name="backend"/> null means the world's choice (auto per group in a multi-host world).
    /// </summary>
    public ProcessGroup CreateGroup(int[] ranks, string? backend = null)
    {
        int gid = _nextGroupId++;
        if (World is MpiProcessGroup mpiWorld)
        {
            if (backend != null && Normalize(backend) is not ("mpi" or "auto"))
                throw new ArgumentException($"backend '{backend}' cannot be used in a world initialised with mpi: every group of an MPI job uses MPI.");
            return WithHosts(mpiWorld.Split(ranks), gid); // collective over the world: non-members take part too
        }
        if (Array.IndexOf(ranks, Env.Rank) < 0) return new NonMemberProcessGroup(ranks, Env.Rank, Backend, Timeout, Logger);
        if (ranks.Length == 1) return new SingleProcessGroup(Env.Rank, Timeout, Logger);
        string prefix = $"g{gid}/";
        string requested = backend == null ? (Backend == "hierarchical" ? "auto" : Backend) : Normalize(backend);
        // While the members meet, the heartbeat says so (and where it was called), for the deadlock check.
        _creating = (OpLabel.Creating(gid, ranks), DateTime.UtcNow);
        long waiting = Heartbeats?.Activity.BeginCreation(_creating.Value.Label, CallSites.Here()) ?? -1;
        try
        {
            return WithHosts(Resolve(requested, ranks) switch
            {
                "shm" => ShmProcessGroup.Create(this, prefix, ranks),
                "hierarchical" => HierarchicalProcessGroup.Create(this, prefix, ranks),
                _ => TcpProcessGroup.Create(this, prefix, ranks),
            }, gid);
        }
        finally
        {
            if (waiting >= 0) Heartbeats!.Activity.EndWait(waiting);
            _creating = null;
        }
    }

    private (OpLabel Label, DateTime Since)? _creating;

    /// <summary>
    /// A store value a group under construction waits for (another member's address or segment): polled each second,
    /// so a deadlock — a member that never comes because it waits for this rank elsewhere — ends in seconds (<see cref="CheckCreation"/>).
    /// </summary>
    public string AwaitKey(string key)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            try { return Store!.GetString(key, TimeSpan.FromSeconds(1)); }
            catch (TimeoutException) when (DateTime.UtcNow < deadline) { CheckCreation(); }
        }
    }

    /// <summary>Throws when the group under construction can never be completed (its members are deadlocked).</summary>
    public void CheckCreation()
    {
        if (_creating is { } c) Heartbeats?.ThrowIfDeadlocked(c.Label, -1, DateTime.UtcNow - c.Since);
    }

    public void Dispose()
    {
        World.Dispose();
        Heartbeats?.Dispose();
        Store?.Dispose();
        _server?.Dispose();
    }
}
