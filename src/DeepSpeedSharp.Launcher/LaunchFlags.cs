namespace DeepSpeedSharp.Launcher;

/// <summary>One flag of <c>dss launch</c>: its spellings, its value (if it takes one) and what it does.</summary>
/// <param name="Name">The main spelling, e.g. <c>--hostfile</c>.</param>
/// <param name="Aliases">Other spellings accepted, e.g. <c>-H</c>.</param>
/// <param name="ValueName">The value's placeholder in help (e.g. <c>N</c>); null for a switch that takes no value.</param>
/// <param name="Description">One line for <c>dss launch --help</c>.</param>
/// <param name="Internal">True for the flags <c>dss launch</c> passes to its own per-node processes.</param>
public sealed record LaunchFlag(string Name, string[] Aliases, string? ValueName, string Description, bool Internal = false)
{
    /// <summary>Every spelling: <see cref="Name"/> then <see cref="Aliases"/>.</summary>
    public IEnumerable<string> Spellings => Aliases.Prepend(Name);
}

/// <summary>
/// The flags <see cref="LaunchOptions.Parse"/> accepts (DeepSpeed's <c>deepspeed</c> runner flags, ours, and the
/// internal ones), described once for <c>dss launch --help</c>. A flag that is not in this table is refused by the
/// parser as unknown, so help and parser cannot drift apart.
/// </summary>
public static class LaunchFlags
{
    /// <summary>All flags, in the order help lists them.</summary>
    public static IReadOnlyList<LaunchFlag> All { get; } =
    [
        new("--hostfile", ["-H"], "HOSTFILE", $"MPI-style hostfile of 'host slots=N' lines; a missing file means a local run (default {Hostfile.DefaultPath})"),
        new("--include", ["-i"], "INCLUDE", "only these hosts/slots: NAME[:SLOT[,SLOT...]][@NAME...], e.g. worker-0@worker-1:0,2"),
        new("--exclude", ["-e"], "EXCLUDE", "leave out these hosts/slots (same syntax as --include, which it cannot be combined with)"),
        new("--num_nodes", [], "N", "use the first N hosts of the hostfile (default -1: all)"),
        new("--num_gpus", ["--num_accelerators"], "N", "ranks per host, slots 0..N-1 (default -1: the hostfile's slots, 1 locally)"),
        new("--master_addr", [], "ADDR", "address of rank 0's rendezvous store (default 127.0.0.1 locally, the first host's address otherwise)"),
        new("--master_port", [], "PORT", $"TCP port of the rendezvous store (default {MasterPort.Default}; a local run takes a free port if it is busy and not given)"),
        new("--launcher", [], "pdsh|openmpi|mpich", "how a multi-node run reaches the other hosts (default pdsh)"),
        new("--launcher_args", [], "ARGS", "extra arguments for pdsh/mpirun, split like a shell would (e.g. \"-R exec\")"),
        new("--node_wrapper", [], "WORDS", "words put before each host's node launcher (pdsh); %h becomes the host's name, e.g. \"nsenter --net=/run/netns/%h --\""),
        new("--no_local_rank", [], null, "do not pass --local_rank=N to PROGRAM (LOCAL_RANK is still set)"),
        new("--no_ssh", [], null, "start only this node's ranks (with --node_rank; run the same command on every node)"),
        new("--node_rank", [], "N", "this node's index with --no_ssh"),
        new("--no_ssh_check", [], null, "accepted for DeepSpeed compatibility (no ssh probe is made)"),
        new("--no_python", [], null, "accepted for DeepSpeed compatibility (PROGRAM never runs through python)"),
        new("--force_multi", [], null, "use the multi-node runner even for one host"),
        new("--save_pid", [], null, "write /tmp/<runner pid>.deepspeed holding the node launcher's pid while it runs"),
        new("--enable_each_rank_log", [], "DIR", "each rank's output goes to DIR/<time>_rank<N>.log instead of the console"),
        new("--bind_cores_to_rank", [], null, "give each local rank its own share of the cores (taskset/numactl, OMP_NUM_THREADS)"),
        new("--bind_core_list", [], "LIST", "the cores --bind_cores_to_rank shares out, e.g. 0-3,6 (default all)"),
        new("--ssh_port", [], "PORT", "ssh port for pdsh and the master address probe"),
        new("--grace_period", [], "SECONDS", "seconds between SIGTERM and SIGKILL when stopping ranks (default 5)"),
        new("--max_restarts", [], "N", "after a failure, stop the job and start it again up to N times; ranks resume from their latest checkpoint (default 0)"),
        new("--min_nodes", ["--min_elastic_nodes"], "N", "on a restart, leave out hosts that were lost (their launcher killed or unreachable) while N or more remain (default: all hosts)"),
        new("--dry-run", ["--dry_run"], null, "print each rank's (or host's) command instead of running it"),
        new("--node_launcher", [], null, "the per-node launcher started on each host by the runner", Internal: true),
        new("--mpi_rank_launcher", [], null, "one rank started by mpirun; reads its rank from MPI's variables", Internal: true),
        new("--world_info", [], "BASE64", "the world (hosts and slots) for the per-node launcher", Internal: true),
        new("--exports", [], "BASE64", "variables to export to every rank", Internal: true),
        new(TokenDelivery.Flag, [], "FILE", "the job token's file (mode 0600, deleted once read), written by the runner", Internal: true),
        new("--job_id", [], "ID", "an id on the node launchers' command lines so a kill command can find them", Internal: true),
        new("--chdir", [], "DIR", "directory the per-node launcher runs the ranks in", Internal: true),
        new("--save_pid_owner", [], "PID", "pid of the runner that asked for --save_pid", Internal: true),
        new(ChildGuard.Flag, [], "PID GRACE -- COMMAND", "the guard between the runner and pdsh/mpirun (first argument only)", Internal: true),
    ];

    /// <summary>The flag spelled <paramref name="spelling"/>, or null.</summary>
    public static LaunchFlag? Find(string spelling) => All.FirstOrDefault(f => f.Spellings.Contains(spelling, StringComparer.Ordinal));

    /// <summary>
    /// True when -h or --help comes among the flags before PROGRAM (flag values and everything from PROGRAM on, which
    /// belongs to the program, are skipped).
    /// </summary>
    public static bool AskForHelp(IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a is "-h" or "--help") return true;
            if (a == "--" || !a.StartsWith('-') || a == "-" || a == ChildGuard.Flag) return false;
            if (a.Contains('=', StringComparison.Ordinal)) continue;
            if (Find(a)?.ValueName != null) i++;
        }
        return false;
    }
}
