namespace DeepSpeedSharp.Launcher;

/// <summary>Everything the per-node launcher needs to start and supervise one node's ranks.</summary>
public sealed class NodeLaunchSpec
{
    /// <summary>The whole job's hosts and slots.</summary>
    public required WorldInfo World { get; init; }
    /// <summary>Which host of <see cref="World"/> this is.</summary>
    public required int NodeRank { get; init; }
    /// <summary>MASTER_ADDR for every rank.</summary>
    public required string MasterAddr { get; init; }
    /// <summary>MASTER_PORT for every rank.</summary>
    public required int MasterPort { get; init; }
    /// <summary>DSS_JOB_TOKEN for every rank.</summary>
    public required string JobToken { get; init; }
    /// <summary>The command that starts the program (e.g. <c>dotnet /abs/train.dll</c>).</summary>
    public required IReadOnlyList<string> ProgramCommand { get; init; }
    /// <summary>The user's arguments, after <c>--local_rank=N</c>.</summary>
    public IReadOnlyList<string> ProgramArgs { get; init; } = [];
    /// <summary>Do not pass <c>--local_rank=N</c>.</summary>
    public bool NoLocalRank { get; init; }
    /// <summary>Directory for per-rank log files (null: prefix output on the console).</summary>
    public string? EachRankLogDir { get; init; }
    /// <summary>Pin each rank to its share of the cores.</summary>
    public bool BindCoresToRank { get; init; }
    /// <summary>The cores to share out (null: all).</summary>
    public string? BindCoreList { get; init; }

    /// <summary>This host's logical cores (what --bind_core_list is checked against and the default list).</summary>
    public int HostCores { get; init; } = Environment.ProcessorCount;
    /// <summary>Extra variables for every rank (from the runner and .deepspeed_env).</summary>
    public IReadOnlyDictionary<string, string> Exports { get; init; } = new Dictionary<string, string>();
    /// <summary>Directory the ranks run in.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;
    /// <summary>Seconds between SIGTERM and SIGKILL when stopping ranks.</summary>
    public double GracePeriodSeconds { get; init; } = 5;
    /// <summary>When non-zero, write /tmp/&lt;SavePidOwner&gt;.deepspeed with this launcher's pid while it runs.</summary>
    public int SavePidOwner { get; init; }
    /// <summary>Stop the ranks when this process's parent dies (the node launcher under pdsh).</summary>
    public bool WatchParent { get; init; }
    /// <summary>Start only this local rank (one rank per process under mpirun); null: all of the node's ranks.</summary>
    public int? OnlyLocalRank { get; init; }
}

/// <summary>One rank's command line and the variables added to its environment.</summary>
/// <param name="Rank">Global rank.</param>
/// <param name="LocalRank">Rank on this node.</param>
/// <param name="Command">Argument vector.</param>
/// <param name="Environment">Variables set on top of the launcher's own environment.</param>
public sealed record RankCommand(int Rank, int LocalRank, IReadOnlyList<string> Command, IReadOnlyDictionary<string, string> Environment);
