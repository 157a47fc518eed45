using System.Globalization;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The flags of <c>dss launch</c> (DeepSpeed's <c>deepspeed</c> runner flags, same names and defaults), plus
/// the internal flags the runner passes to the per-node launcher. Parsed by <see cref="Parse"/>.
/// </summary>
public sealed class LaunchOptions
{
    /// <summary>-H/--hostfile: MPI-style hostfile; a missing file means a local run.</summary>
    public string Hostfile { get; set; } = global::DeepSpeedSharp.Launcher.Hostfile.DefaultPath;
    /// <summary>True when -H/--hostfile was given explicitly.</summary>
    public bool HostfileGiven { get; set; }
    /// <summary>-i/--include resource string.</summary>
    public string Include { get; set; } = "";
    /// <summary>-e/--exclude resource string.</summary>
    public string Exclude { get; set; } = "";
    /// <summary>--num_nodes: use the first N hosts (-1 = all).</summary>
    public int NumNodes { get; set; } = -1;
    /// <summary>--num_gpus/--num_accelerators: processes per host (-1 = the hostfile's slots).</summary>
    public int NumGpus { get; set; } = -1;
    /// <summary>--master_addr (empty = 127.0.0.1 locally, the first host's address otherwise).</summary>
    public string MasterAddr { get; set; } = "";
    /// <summary>--master_port.</summary>
    public int MasterPort { get; set; } = DeepSpeedSharp.Launcher.MasterPort.Default;
    /// <summary>True when --master_port was given (a local run otherwise takes a free port if the default is busy).</summary>
    public bool MasterPortGiven { get; set; }
    /// <summary>--node_rank (with --no_ssh, and internally for the node launcher).</summary>
    public int NodeRank { get; set; } = -1;
    /// <summary>--launcher: pdsh, openmpi or mpich.</summary>
    public string Launcher { get; set; } = "pdsh";
    /// <summary>--launcher_args: extra arguments for pdsh/mpirun, split like a shell would.</summary>
    public string LauncherArgs { get; set; } = "";
    /// <summary>
    /// --node_wrapper: words put before each host's node launcher in pdsh's remote command (and before the master
    /// address probe), split like a shell would; <c>%h</c> becomes the host's name. Empty: none.
    /// </summary>
    public string NodeWrapper { get; set; } = "";
    /// <summary>--no_local_rank: do not append --local_rank=N to the program's arguments.</summary>
    public bool NoLocalRank { get; set; }
    /// <summary>--no_ssh: start only this node's ranks (needs --node_rank).</summary>
    public bool NoSsh { get; set; }
    /// <summary>--no_ssh_check: accepted for compatibility (no ssh probe is made).</summary>
    public bool NoSshCheck { get; set; }
    /// <summary>--force_multi: use the multi-node runner even for one host.</summary>
    public bool ForceMulti { get; set; }
    /// <summary>--save_pid: write /tmp/&lt;runner pid&gt;.deepspeed holding the node launcher's pid.</summary>
    public bool SavePid { get; set; }
    /// <summary>--enable_each_rank_log DIR: each rank's output goes to DIR/&lt;time&gt;_rank&lt;N&gt;.log.</summary>
    public string? EachRankLogDir { get; set; }
    /// <summary>--bind_cores_to_rank: give each local rank its own share of the cores.</summary>
    public bool BindCoresToRank { get; set; }
    /// <summary>--bind_core_list: the cores to share out (e.g. 0-3,6), default all.</summary>
    public string? BindCoreList { get; set; }
    /// <summary>--ssh_port for pdsh's ssh.</summary>
    public int? SshPort { get; set; }
    /// <summary>--dry-run: print the commands instead of running them.</summary>
    public bool DryRun { get; set; }
    /// <summary>--grace_period SECONDS between SIGTERM and SIGKILL when stopping ranks (default 5).</summary>
    public double GracePeriodSeconds { get; set; } = 5;
    /// <summary>--max_restarts N: how many times a failed job is started again (default 0).</summary>
    public int MaxRestarts { get; set; }
    /// <summary>--min_nodes/--min_elastic_nodes N: a restart may leave out lost hosts while N remain (-1: never leave one out).</summary>
    public int MinNodes { get; set; } = -1;

    /// <summary>Internal: this process is the per-node launcher started by the runner.</summary>
    public bool NodeLauncher { get; set; }
    /// <summary>Internal: this process is one rank started by mpirun; it reads its rank from MPI's variables.</summary>
    public bool MpiRankLauncher { get; set; }
    /// <summary>Internal: base64 world info.</summary>
    public string? WorldInfo { get; set; }
    /// <summary>Internal: base64 JSON of variables to export to every rank.</summary>
    public string? Exports { get; set; }
    /// <summary>Internal: an id on the node launchers' command lines so a kill command can find them.</summary>
    public string? JobId { get; set; }

    /// <summary>--token_file (node launcher): where the runner left the job token.</summary>
    public string? TokenFile { get; set; }
    /// <summary>Internal: directory to run the ranks in.</summary>
    public string? Chdir { get; set; }
    /// <summary>Internal: pid of the runner that asked for --save_pid.</summary>
    public int SavePidOwner { get; set; }

    /// <summary>PROGRAM: a .dll, a project directory, or an executable.</summary>
    public string Program { get; set; } = "";
    /// <summary>The program's own arguments.</summary>
    public List<string> ProgramArgs { get; set; } = [];

    /// <summary>Usage text for <c>dss launch --help</c>.</summary>
    public const string Usage =
        "usage: dss launch [-H HOSTFILE] [-i INCLUDE | -e EXCLUDE] [--num_nodes N] [--num_gpus N]\n" +
        "                  [--master_addr ADDR] [--master_port PORT] [--launcher pdsh|openmpi|mpich]\n" +
        "                  [--launcher_args ARGS] [--no_local_rank] [--no_ssh --node_rank N] [--force_multi]\n" +
        "                  [--enable_each_rank_log DIR] [--bind_cores_to_rank [--bind_core_list LIST]]\n" +
        "                  [--save_pid] [--ssh_port PORT] [--grace_period SECONDS] [--dry-run]\n" +
        "                  PROGRAM [ARGS...]\n" +
        "PROGRAM is a .NET assembly (X.dll, run with dotnet), a project directory (built once with\n" +
        "`dotnet build -c Release`, then its assembly is run) or any executable. See docs/launcher.md.";

    /// <summary>
    /// Parses <c>dss launch</c>'s arguments (<c>--flag value</c> or <c>--flag=value</c>); the first argument that is not a
    /// flag is PROGRAM, and everything after it is the program's own. Only the flags of <see cref="LaunchFlags.All"/> are known.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown flag, a missing or malformed value, or no PROGRAM.</exception>
    public static LaunchOptions Parse(IReadOnlyList<string> args)
    {
        var o = new LaunchOptions();
        int i = 0;
        for (; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--") { i++; break; }
            if (!a.StartsWith('-') || a == "-") break;
            string name = a, inline = "";
            bool hasInline = false;
            int eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0) { name = a[..eq]; inline = a[(eq + 1)..]; hasInline = true; }
            string Value()
            {
                if (hasInline) return inline;
                if (i + 1 >= args.Count) throw new ArgumentException($"dss launch: {name} needs a value.");
                return args[++i];
            }
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
                : throw new ArgumentException($"dss launch: {name} needs an integer, got '{(hasInline ? inline : args[i])}'.");
            void Flag() { if (hasInline) throw new ArgumentException($"dss launch: {name} takes no value (got '{inline}')."); }
            if (LaunchFlags.Find(name) == null)
            {
                if (NotOffered.TryGetValue(name, out var why)) throw new ArgumentException($"dss launch: {name} is a DeepSpeed flag this launcher does not offer: {why}.");
                var near = Config.Schema.KeySuggester.Suggest(name, LaunchFlags.All.Where(f => !f.Internal).SelectMany(f => f.Spellings));
                throw new ArgumentException($"dss launch: unknown flag '{name}'{(near != null ? $"; did you mean {near}?" : ".")} Flags go before PROGRAM; run `dss launch --help` for the list.");
            }
            switch (name)
            {
                case "-H" or "--hostfile": o.Hostfile = Value(); o.HostfileGiven = true; break;
                case "-i" or "--include": o.Include = Value(); break;
                case "-e" or "--exclude": o.Exclude = Value(); break;
                case "--num_nodes": o.NumNodes = Int(); break;
                case "--num_gpus" or "--num_accelerators": o.NumGpus = Int(); break;
                case "--master_addr": o.MasterAddr = Value(); break;
                case "--master_port": o.MasterPort = Int(); o.MasterPortGiven = true; break;
                case "--node_rank": o.NodeRank = Int(); break;
                case "--launcher": o.Launcher = Value().ToLowerInvariant(); break;
                case "--launcher_args": o.LauncherArgs = Value(); break;
                case "--node_wrapper": o.NodeWrapper = Value(); break;
                case "--no_local_rank": Flag(); o.NoLocalRank = true; break;
                case "--no_ssh": Flag(); o.NoSsh = true; break;
                case "--no_ssh_check": Flag(); o.NoSshCheck = true; break;
                case "--no_python": Flag(); break; // the default: PROGRAM is never run through python
                case "--force_multi": Flag(); o.ForceMulti = true; break;
                case "--save_pid": Flag(); o.SavePid = true; break;
                case "--enable_each_rank_log": var dir = Value(); o.EachRankLogDir = dir == "None" ? null : dir; break;
                case "--bind_cores_to_rank": Flag(); o.BindCoresToRank = true; break;
                case "--bind_core_list": o.BindCoreList = Value(); break;
                case "--ssh_port": o.SshPort = Int(); break;
                case "--dry-run" or "--dry_run": Flag(); o.DryRun = true; break;
                case "--grace_period":
                    var g = Value();
                    if (!double.TryParse(g, NumberStyles.Float, CultureInfo.InvariantCulture, out var secs) || !(secs >= 0) || secs > 3600)
                        throw new ArgumentException($"dss launch: --grace_period needs a number of seconds from 0 to 3600, got '{g}'.");
                    o.GracePeriodSeconds = secs;
                    break;
                case "--max_restarts":
                    o.MaxRestarts = Int();
                    if (o.MaxRestarts is < 0 or > 1000) throw new ArgumentException($"dss launch: --max_restarts needs a number of restarts from 0 to 1000, got {o.MaxRestarts}.");
                    break;
                case "--min_nodes" or "--min_elastic_nodes":
                    o.MinNodes = Int();
                    if (o.MinNodes < 1) throw new ArgumentException($"dss launch: {name} needs a number of hosts of 1 or more, got {o.MinNodes}.");
                    break;
                case "--node_launcher": Flag(); o.NodeLauncher = true; break;
                case "--mpi_rank_launcher": Flag(); o.MpiRankLauncher = true; break;
                case "--world_info": o.WorldInfo = Value(); break;
                case "--exports": o.Exports = Value(); break;
                case "--job_id": o.JobId = Value(); break;
                case TokenDelivery.Flag: o.TokenFile = Value(); break;
                case "--chdir": o.Chdir = Value(); break;
                case "--save_pid_owner": o.SavePidOwner = Int(); break;
                case ChildGuard.Flag: throw new ArgumentException($"dss launch: {name} must be the first argument (dss launch starts it itself).");
                default: throw new InvalidOperationException($"dss launch: {name} is in LaunchFlags but not parsed.");
            }
        }
        if (i >= args.Count) throw new ArgumentException("dss launch: no PROGRAM given (a .dll, a project directory or an executable).");
        o.Program = args[i];
        o.ProgramArgs = args.Skip(i + 1).ToList();
        if (o.Launcher is not ("pdsh" or "openmpi" or "mpich"))
            throw new ArgumentException($"dss launch: --launcher '{o.Launcher}' is not supported; use pdsh, openmpi or mpich.");
        if (o.NodeWrapper.Length > 0 && o.Launcher != "pdsh")
            throw new ArgumentException($"dss launch: --node_wrapper works with --launcher pdsh, not {o.Launcher} (mpirun starts each rank itself; wrap ranks with its own options, e.g. OpenMPI's --launch-agent).");
        if (o.NodeWrapper.Length > 0 && NodeWrapperWords(o.NodeWrapper).Count == 0)
            throw new ArgumentException("dss launch: --node_wrapper is blank; give the words to put before each host's launcher (e.g. \"nsenter --net=/run/netns/%h --\") or leave it out.");
        if (o.MasterPort is < 1 or > 65535) throw new ArgumentException($"dss launch: --master_port {o.MasterPort} is not a TCP port (1-65535).");
        if (o.NumGpus is 0 or < -1)
            throw new ArgumentException($"dss launch: --num_gpus {o.NumGpus} is not a number of processes per host; give 1 or more, or -1 (the default: the hostfile's slots).");
        if (o.NumNodes is 0 or < -1)
            throw new ArgumentException($"dss launch: --num_nodes {o.NumNodes} is not a number of hosts; give 1 or more, or -1 (the default: every host of the hostfile).");
        if (o.MasterAddr.Length > 0 && MasterAddrProblem(o.MasterAddr) is { } problem)
            throw new ArgumentException($"dss launch: --master_addr '{o.MasterAddr}' {problem}.");
        if (o.BindCoreList != null)
        {
            if (!o.BindCoresToRank)
                throw new ArgumentException($"dss launch: --bind_core_list '{o.BindCoreList}' only takes effect with --bind_cores_to_rank; add it, or drop the list.");
            try { CoreBinding.ParseCoreList(o.BindCoreList); }
            catch (FormatException e) { throw new ArgumentException($"dss launch: {e.Message}"); }
        }
        return o;
    }

    /// <summary>The words of --node_wrapper (empty when not given).</summary>
    /// <exception cref="ArgumentException">An unterminated quote, named with the flag.</exception>
    public static List<string> NodeWrapperWords(string wrapper)
    {
        try { return ShellWords.Split(wrapper); }
        catch (FormatException e) { throw new ArgumentException($"dss launch: --node_wrapper: {e.Message}"); }
    }

    /// <summary>DeepSpeed runner flags this launcher does not offer, and what to use instead.</summary>
    private static readonly Dictionary<string, string> NotOffered = new(StringComparer.Ordinal)
    {
        ["--autotuning"] = "autotuning is not implemented; measure configurations with `dss bench train` and `dss estimate`",
        ["--elastic_training"] = "elastic training here is restarts: --max_restarts N and --min_nodes M (docs/launcher.md#elastic-restarts)",
        ["--max_elastic_nodes"] = "a restart never adds hosts; --min_nodes M says how many must remain",
        ["--module"] = "PROGRAM is a .NET assembly, project directory or executable, not a Python module",
        ["--user_script"] = "give PROGRAM as the first argument after the flags",
        ["--comment"] = "it is a SLURM option; the SLURM runner is not offered (use pdsh, openmpi or mpich)",
        ["--account"] = "it is a SLURM option; the SLURM runner is not offered (use pdsh, openmpi or mpich)",
    };

    /// <summary>
    /// Why <paramref name="addr"/> cannot be rank 0's address, or null: dotted numbers must form an IPv4 address, and
    /// a host name must be one (letters, digits, '-' and '.', labels of at most 63 characters). Whether a name resolves
    /// is left to the hosts that use it.
    /// </summary>
    internal static string? MasterAddrProblem(string addr)
    {
        if (System.Net.IPAddress.TryParse(addr, out var ip))
            return addr.All(c => char.IsAsciiDigit(c) || c == '.') && addr.Count(c => c == '.') != 3
                ? "is not an IPv4 address (four numbers 0-255 separated by dots)" : null;
        if (addr.All(c => char.IsAsciiDigit(c) || c == '.'))
            return "is not an IPv4 address (four numbers 0-255 separated by dots)";
        if (addr.Contains(':')) return "is not an IPv6 address";
        if (addr.Length > 253 || addr.Split('.').Any(l => l.Length is 0 or > 63 || l.StartsWith('-') || l.EndsWith('-') || !l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
            return "is neither an IP address nor a host name (letters, digits, '-' and '.')";
        return null;
    }
}
