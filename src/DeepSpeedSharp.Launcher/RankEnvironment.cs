using System.Globalization;
using System.Security.Cryptography;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The variables every rank gets (as DeepSpeed's <c>launch.py</c> sets them): <c>RANK</c>, <c>LOCAL_RANK</c>,
/// <c>WORLD_SIZE</c>, <c>LOCAL_SIZE</c>, <c>CROSS_RANK</c> (node rank), <c>CROSS_SIZE</c> (node count),
/// <c>MASTER_ADDR</c>, <c>MASTER_PORT</c>, <c>CUDA_VISIBLE_DEVICES</c> (the node's slots) and the job token
/// <c>DSS_JOB_TOKEN</c> the rendezvous store checks (the node launcher adds <c>DSS_LAUNCHER_PID</c>, its own pid).
/// </summary>
public static class RankEnvironment
{
    /// <summary>Name of the variable holding the pid of the launcher process that started the rank (ranks die with it).</summary>
    public const string LauncherPidVariable = "DSS_LAUNCHER_PID";

    /// <summary>Name of the job token variable.</summary>
    public const string JobTokenVariable = "DSS_JOB_TOKEN";

    /// <summary>A fresh random 128-bit job token in lowercase hex.</summary>
    public static string NewJobToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>The variables for the rank at <paramref name="localRank"/> on node <paramref name="nodeRank"/>.</summary>
    public static Dictionary<string, string> For(WorldInfo world, int nodeRank, int localRank, string masterAddr, int masterPort, string jobToken)
    {
        var ranks = world.GlobalRanksOf(nodeRank);
        if (localRank < 0 || localRank >= ranks.Count)
            throw new ArgumentOutOfRangeException(nameof(localRank), $"local rank {localRank} is outside [0, {ranks.Count}) on node {nodeRank}.");
        string S(int v) => v.ToString(CultureInfo.InvariantCulture);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["RANK"] = S(ranks[localRank]),
            ["LOCAL_RANK"] = S(localRank),
            ["WORLD_SIZE"] = S(world.WorldSize),
            ["LOCAL_SIZE"] = S(ranks.Count),
            ["CROSS_RANK"] = S(nodeRank),
            ["CROSS_SIZE"] = S(world.NodeCount),
            ["MASTER_ADDR"] = masterAddr,
            ["MASTER_PORT"] = S(masterPort),
            ["CUDA_VISIBLE_DEVICES"] = string.Join(",", world.SlotsOf(nodeRank).Select(S)),
            [JobTokenVariable] = jobToken,
            // The node's name in the hostfile: the communication library groups ranks by it (shared memory within a
            // host, sockets between hosts), which also makes one-machine pdsh "-R exec" runs behave like real hosts.
            ["DSS_HOST_ID"] = world.Hosts[nodeRank],
        };
    }
}
