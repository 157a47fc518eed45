namespace DeepSpeedSharp.Launcher;

/// <summary>
/// OpenMPI's <c>mpirun</c> as the multi-node runner: a generated hostfile (<c>host slots=N</c> for the active
/// hosts, so --include/--exclude/--num_nodes/--num_gpus apply, unlike DeepSpeed's OpenMPI runner which rejects
/// them), <c>-np WORLD_SIZE</c>, <c>--bind-to none</c>, then one <c>dss launch --mpi_rank_launcher</c> per rank: it
/// reads <c>OMPI_COMM_WORLD_RANK</c>, sets the usual rank variables and runs PROGRAM. mpirun itself stops the
/// job when a rank fails.
/// </summary>
public sealed class OpenMpiRunner : IMultiNodeRunner
{
    /// <inheritdoc />
    public string Name => "openmpi";

    /// <inheritdoc />
    public string Backend => "mpirun";

    /// <summary>Where the generated hostfile goes.</summary>
    public static string HostfilePath(string jobId) => Path.Combine(Path.GetTempPath(), $"dss-hostfile-{jobId}");

    /// <inheritdoc />
    public MultiNodeCommand Build(MultiNodeContext c)
    {
        var hostfile = HostfilePath(c.JobId);
        // -x forwards the token by name from mpirun's environment: its value is on no command line.
        var command = new List<string> { "mpirun", "--allow-run-as-root", "-np", c.World.WorldSize.ToString(), "--hostfile", hostfile, "--bind-to", "none",
            "-x", RankEnvironment.JobTokenVariable };
        command.AddRange(ShellWords.Split(c.Options.LauncherArgs));
        var rank = MultiNodeRunners.LauncherArguments(c, "--mpi_rank_launcher", nodeRank: null);
        command.AddRange(rank);
        var perHost = c.World.Hosts.Select(h => $"{h}: {c.World.SlotsOf(h).Count} x {ShellWords.Join(rank)}").ToList();
        perHost.Insert(0, $"(generated hostfile {hostfile}: {MultiNodeRunners.HostfileText(c.World).TrimEnd().Replace("\n", "; ")})");
        // mpirun gives ranks a pseudo-terminal; with a real TERM, .NET writes terminal set-up codes into the output.
        var env = new Dictionary<string, string> { ["TERM"] = "dumb", [RankEnvironment.JobTokenVariable] = c.JobToken };
        return new MultiNodeCommand(command, null, env, perHost,
            new Dictionary<string, string> { [hostfile] = MultiNodeRunners.HostfileText(c.World) });
    }
}
