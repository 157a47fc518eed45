using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DeepSpeedSharp.Launcher;

/// <summary>What a multi-node runner needs to build its command line.</summary>
public sealed class MultiNodeContext
{
    /// <summary>The parsed flags.</summary>
    public required LaunchOptions Options { get; init; }
    /// <summary>The active hosts and slots.</summary>
    public required WorldInfo World { get; init; }
    /// <summary>The command that starts <c>dss</c> on every host (e.g. <c>/usr/bin/dotnet /opt/dss/dss.dll</c>).</summary>
    public required IReadOnlyList<string> DssCommand { get; init; }
    /// <summary>PROGRAM as every host should run it (an absolute .dll or executable path).</summary>
    public required string Program { get; init; }
    /// <summary>MASTER_ADDR.</summary>
    public required string MasterAddr { get; init; }
    /// <summary>Variables for every rank (never the job token: it must not appear on a command line).</summary>
    public required IReadOnlyDictionary<string, string> Exports { get; init; }
    /// <summary>The job token (<see cref="TokenDelivery"/> says how each runner passes it).</summary>
    public required string JobToken { get; init; }
    /// <summary>Directory the ranks run in on every host.</summary>
    public required string WorkingDirectory { get; init; }
    /// <summary>An id for this job's node launchers, so the kill command can find them.</summary>
    public required string JobId { get; init; }
    /// <summary>The runner's pid (for --save_pid).</summary>
    public int RunnerPid { get; init; } = Environment.ProcessId;
}

/// <summary>A multi-node runner's command: what to run here, and how to stop the job's remote processes.</summary>
/// <param name="Command">The pdsh/mpirun argument vector.</param>
/// <param name="KillCommand">Command that stops the node launchers on every host (null when the backend does it itself).</param>
/// <param name="Environment">Variables to set for <paramref name="Command"/>.</param>
/// <param name="PerHost">For --dry-run: "host: the command that runs there" lines.</param>
/// <param name="Files">Files to write before running (path → content), e.g. OpenMPI's generated hostfile.</param>
public sealed record MultiNodeCommand(IReadOnlyList<string> Command, IReadOnlyList<string>? KillCommand,
    IReadOnlyDictionary<string, string> Environment, IReadOnlyList<string> PerHost, IReadOnlyDictionary<string, string> Files);

/// <summary>A way to start the per-node launchers (or the ranks) on several hosts: pdsh, OpenMPI's or MPICH's mpirun.</summary>
public interface IMultiNodeRunner
{
    /// <summary>The --launcher value.</summary>
    string Name { get; }
    /// <summary>The program that must be on PATH.</summary>
    string Backend { get; }
    /// <summary>Builds the command.</summary>
    MultiNodeCommand Build(MultiNodeContext context);
}

/// <summary>Helpers shared by the runners.</summary>
public static class MultiNodeRunners
{
    /// <summary>The runner for a --launcher name.</summary>
    public static IMultiNodeRunner For(string name) => name switch
    {
        "pdsh" => new PdshRunner(),
        "openmpi" => new OpenMpiRunner(),
        "mpich" => new MpichRunner(),
        _ => throw new ArgumentException($"--launcher '{name}' is not supported; use pdsh, openmpi or mpich."),
    };

    /// <summary>URL-safe base64 of a JSON object of variables (how exports travel on a command line).</summary>
    public static string EncodeExports(IReadOnlyDictionary<string, string> exports) =>
        Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(exports.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary())).Replace('+', '-').Replace('/', '_');

    /// <summary>Reads <see cref="EncodeExports"/>'s output.</summary>
    public static Dictionary<string, string> DecodeExports(string base64)
    {
        try
        {
            var bytes = Convert.FromBase64String(base64.Replace('-', '+').Replace('_', '/'));
            return JsonSerializer.Deserialize<Dictionary<string, string>>(bytes) ?? [];
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            throw new ArgumentException($"--exports is not base64 JSON of variables: {e.Message}");
        }
    }

    /// <summary>
    /// The <c>dss launch</c> arguments that a host's launcher process gets: <paramref name="mode"/> (--node_launcher or
    /// --mpi_rank_launcher), the world, master, exports, working directory and the user's flags, then PROGRAM ARGS.
    /// </summary>
    public static List<string> LauncherArguments(MultiNodeContext c, string mode, string? nodeRank)
    {
        var o = c.Options;
        var args = new List<string>(c.DssCommand) { "launch", mode, $"--world_info={c.World.Encode()}" };
        if (nodeRank != null) args.Add($"--node_rank={nodeRank}");
        args.Add($"--master_addr={c.MasterAddr}");
        args.Add($"--master_port={o.MasterPort.ToString(CultureInfo.InvariantCulture)}");
        args.Add($"--job_id={c.JobId}");
        args.Add($"--exports={EncodeExports(c.Exports)}");
        args.Add($"--chdir={c.WorkingDirectory}");
        if (o.NoLocalRank) args.Add("--no_local_rank");
        if (o.SavePid) args.Add($"--save_pid_owner={c.RunnerPid.ToString(CultureInfo.InvariantCulture)}");
        if (o.EachRankLogDir != null) args.Add($"--enable_each_rank_log={Path.GetFullPath(o.EachRankLogDir, c.WorkingDirectory)}");
        if (o.BindCoresToRank) args.Add("--bind_cores_to_rank");
        if (o.BindCoreList != null) args.Add($"--bind_core_list={o.BindCoreList}");
        args.Add($"--grace_period={o.GracePeriodSeconds.ToString(CultureInfo.InvariantCulture)}");
        args.Add("--");
        args.Add(c.Program);
        args.AddRange(o.ProgramArgs);
        return args;
    }

    /// <summary>Writes <c>host slots=N</c> lines for the active world (the hostfile handed to mpirun).</summary>
    public static string HostfileText(WorldInfo world)
    {
        var sb = new StringBuilder();
        foreach (var h in world.Hosts) sb.Append(CultureInfo.InvariantCulture, $"{h} slots={world.SlotsOf(h).Count}\n");
        return sb.ToString();
    }
}
