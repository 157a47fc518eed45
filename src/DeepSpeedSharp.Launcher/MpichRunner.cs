namespace DeepSpeedSharp.Launcher;

/// <summary>
/// MPICH's (Hydra) <c>mpirun -n WORLD_SIZE -ppn PER_HOST -hosts h1,h2</c> as the multi-node runner, starting one
/// <c>dss launch --mpi_rank_launcher</c> per rank, which reads <c>PMI_RANK</c>. As in DeepSpeed, every host must
/// run the same number of ranks.
/// </summary>
public sealed class MpichRunner : IMultiNodeRunner
{
    /// <inheritdoc />
    public string Name => "mpich";

    /// <inheritdoc />
    public string Backend => "mpirun";

    /// <inheritdoc />
    public MultiNodeCommand Build(MultiNodeContext c)
    {
        var counts = c.World.Hosts.Select(h => c.World.SlotsOf(h).Count).Distinct().ToList();
        if (counts.Count != 1)
            throw new ArgumentException($"--launcher mpich requires the same number of ranks on every host; got {string.Join(", ", c.World.Hosts.Select(h => $"{h}={c.World.SlotsOf(h).Count}"))}.");
        // -genvlist forwards the token by name from mpirun's environment: its value is on no command line.
        var command = new List<string> { "mpirun", "-n", c.World.WorldSize.ToString(), "-ppn", counts[0].ToString(), "-hosts", string.Join(",", c.World.Hosts),
            "-genvlist", RankEnvironment.JobTokenVariable };
        command.AddRange(ShellWords.Split(c.Options.LauncherArgs));
        var rank = MultiNodeRunners.LauncherArguments(c, "--mpi_rank_launcher", nodeRank: null);
        command.AddRange(rank);
        var perHost = c.World.Hosts.Select(h => $"{h}: {counts[0]} x {ShellWords.Join(rank)}").ToList();
        return new MultiNodeCommand(command, null, new Dictionary<string, string> { [RankEnvironment.JobTokenVariable] = c.JobToken }, perHost, new Dictionary<string, string>());
    }
}
