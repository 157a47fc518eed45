using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DeepSpeedSharp.Comm.Shm;
using DeepSpeedSharp.Comm.Store;
using DeepSpeedSharp.Comm.Tcp;

namespace DeepSpeedSharp.Comm;

/// <summary>State behind <see cref="Dist"/>: the launch environment, the store, and how to build groups.</summary>
internal sealed class CommRuntime : IDisposable
{
    private readonly TcpStoreServer? _server;
    private int _nextGroupId;

    public CommRuntime(LaunchEnvironment env, string? backend, TimeSpan timeout, CommsLogger logger)
    {
        Env = env;
        Timeout = timeout;
        Logger = logger;
        if (env.WorldSize == 1)
        {
            Backend = "single";
            Hosts = [env.HostId];
            World = new SingleProcessGroup(0, timeout, logger);
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
            Store = new TcpStoreClient(addr, env.MasterPort, token, timeout);
            LocalAddress = Store.LocalAddress;
            Store.Set($"host/{env.Rank}", env.HostId);
            if (env.Rank == 0) Store.Set("job/id", Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant());
            JobId = Store.GetString("job/id");
            Hosts = Enumerable.Range(0, env.WorldSize).Select(r => Store.GetString($"host/{r}")).ToArray();
        }
        catch
        {
            Store?.Dispose();
            _server?.Dispose();
            throw;
        }
        bool oneHost = Hosts.Distinct().Count() == 1;
        Backend = (backend ?? "auto").ToLowerInvariant() switch
        {
            "auto" or "nccl" or "gloo" or "ccl" or "hccl" => oneHost ? "shm" : "tcp",
            "shm" when !oneHost => throw new ArgumentException($"backend 'shm' needs all ranks on one host, but the ranks report hosts {string.Join(", ", Hosts.Distinct())}; use 'tcp' or leave the backend unset."),
            "shm" => "shm",
            "tcp" => "tcp",
            var other => throw new ArgumentException($"unknown communication backend '{other}'; use shm, tcp or leave it unset (auto)."),
        };
        World = CreateGroup(Enumerable.Range(0, env.WorldSize).ToArray());
    }

    public LaunchEnvironment Env { get; }
    public TimeSpan Timeout { get; }
    public CommsLogger Logger { get; }
    public string Backend { get; }
    public string[] Hosts { get; }
    public byte[] Token { get; } = [];
    public string JobId { get; } = "single";
    public TcpStoreClient? Store { get; }
    public IPAddress LocalAddress { get; } = IPAddress.Loopback;
    public ProcessGroup World { get; }

    /// <summary>Creates a group; collective over the world (every rank calls it with the same ranks, in the same order).</summary>
    public ProcessGroup CreateGroup(int[] ranks)
    {
        int gid = _nextGroupId++;
        if (Array.IndexOf(ranks, Env.Rank) < 0) return new NonMemberProcessGroup(ranks, Env.Rank, Backend, Timeout, Logger);
        if (ranks.Length == 1) return new SingleProcessGroup(Env.Rank, Timeout, Logger);
        string prefix = $"g{gid}/";
        return Backend switch
        {
            "shm" => ShmProcessGroup.Create(this, prefix, ranks),
            _ => TcpProcessGroup.Create(this, prefix, ranks),
        };
    }

    public void Dispose()
    {
        World.Dispose();
        Store?.Dispose();
        _server?.Dispose();
    }
}
