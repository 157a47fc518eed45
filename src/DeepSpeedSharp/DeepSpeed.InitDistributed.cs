using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp;

public static partial class DeepSpeed
{
    /// <summary>
    /// Which restart of the job this process belongs to: 0 for its first run, N after <c>dss launch --max_restarts</c>
    /// started it again for the N-th time (DSS_RESTART_COUNT, as torchrun's TORCHELASTIC_RESTART_COUNT). A program that
    /// saves checkpoints resumes from its latest one when this is above 0.
    /// </summary>
    public static int RestartCount => LaunchEnvironment.FromEnvironment().RestartCount;

    /// <summary>
    /// deepspeed.init_distributed: initialises communication from the launch environment. <paramref name="distBackend"/>
    /// is "shm", "tcp" or null (auto; DeepSpeed's "nccl"/"gloo"/"ccl" also mean auto). <paramref name="initMethod"/>
    /// accepts null, "env://" or "tcp://HOST:PORT" (overriding MASTER_ADDR/MASTER_PORT). <paramref name="rank"/> and
    /// <paramref name="worldSize"/> override RANK/WORLD_SIZE when ≥ 0. The timeout defaults to 10 minutes
    /// (DEEPSPEED_TIMEOUT, in minutes, overrides). Calling it again returns the existing world.
    /// </summary>
    public static ProcessGroup InitDistributed(string? distBackend = null, string? initMethod = null, TimeSpan? timeout = null, int rank = -1, int worldSize = -1)
    {
        Native.TorchRuntime.EnsureLoaded(); // the user's first DeepSpeedSharp call: a native-load failure is explained here
        var env = LaunchEnvironment.FromEnvironment();
        if (rank >= 0) env = env with { Rank = rank };
        if (worldSize >= 0) env = env with { WorldSize = worldSize, LocalWorldSize = Math.Min(env.LocalWorldSize, worldSize) };
        if (env.Rank >= env.WorldSize) throw new ArgumentException($"rank {env.Rank} is outside 0..{env.WorldSize - 1} (world_size {env.WorldSize}).");
        if (!string.IsNullOrEmpty(initMethod) && initMethod != "env://")
        {
            if (!initMethod.StartsWith("tcp://", StringComparison.Ordinal))
                throw new ArgumentException($"init_method '{initMethod}' is not supported; use 'env://' or 'tcp://HOST:PORT'.");
            var hostPort = initMethod[6..];
            int colon = hostPort.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(hostPort[(colon + 1)..], out var port) || port is <= 0 or > 65535)
                throw new ArgumentException($"init_method '{initMethod}' must look like tcp://HOST:PORT.");
            env = env with { MasterAddr = hostPort[..colon].Trim('[', ']'), MasterPort = port };
        }
        return Dist.Initialize(env, distBackend, timeout);
    }
}
