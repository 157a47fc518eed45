using System.Diagnostics;
using System.Collections;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// <c>dss launch</c>: the runner half (DeepSpeed's <c>runner.py</c>) decides hosts and slots and either runs this
/// machine's ranks itself (one host, or <c>--no_ssh</c>) or starts a per-node launcher on every host through
/// pdsh/mpirun; the per-node half (<c>--node_launcher</c>, <c>--mpi_rank_launcher</c>) is <see cref="NodeLauncher"/>.
/// </summary>
public static class LaunchRunner
{
    private const string Tag = "[dss launch]";

    /// <summary>Runs <c>dss launch</c> with <paramref name="args"/>; returns the exit code.</summary>
    /// <param name="args">The arguments after <c>launch</c>.</param>
    /// <param name="dssCommand">How to start <c>dss</c> itself on other hosts (e.g. <c>dotnet /abs/dss.dll</c>).</param>
    /// <param name="stdout">Rank output.</param>
    /// <param name="stderr">Messages.</param>
    public static int Run(IReadOnlyList<string> args, IReadOnlyList<string> dssCommand, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count > 0 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(LaunchOptions.Usage);
            return 0;
        }
        ProcessTree.UnblockLauncherSignals();
        if (args.Count > 0 && args[0] == ChildGuard.Flag) return ChildGuard.Run(args, stderr);
        var o = LaunchOptions.Parse(args);
        if (o.NodeLauncher) return RunNode(o, stdout, stderr);
        if (o.MpiRankLauncher) return RunMpiRank(o, stdout, stderr);

        var environment = CurrentEnvironment();
        var cwd = Environment.CurrentDirectory;
        var pool = Hostfile.Fetch(o.Hostfile);
        if (pool == null && o.HostfileGiven)
            stderr.WriteLine($"{Tag} warning: hostfile '{o.Hostfile}' not found; running with local resources only.");
        var plan = ResourcePlanner.Plan(o, pool);
        var exports = DeepSpeedEnvFile.Collect(environment, cwd, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), includePrefixed: plan.MultiNode);
        string token = JobToken(o, plan, environment);
        exports.Remove(RankEnvironment.JobTokenVariable); // each runner passes it its own way, never on a command line
        ConfigPreflight.Check(o.ProgramArgs, cwd);
        var program = ProgramResolver.Resolve(o.Program, cwd, line => stderr.WriteLine($"{Tag} {line}"), o.DryRun);
        stderr.WriteLine($"{Tag} world: {plan.World.ToJson()} ({plan.World.WorldSize} rank(s) on {plan.World.NodeCount} node(s){(plan.MultiNode ? $", via {o.Launcher}" : "")})");

        if (!plan.MultiNode)
        {
            if (o.NoSsh && plan.World.NodeCount > 1 && o.MasterAddr.Length == 0)
                throw new ArgumentException("--no_ssh with several nodes needs --master_addr (the address of node 0, the same on every node).");
            if (!o.DryRun && !(o.NoSsh && plan.World.NodeCount > 1))
                o.MasterPort = MasterPort.ForLocalRun(o.MasterAddr.Length > 0 ? o.MasterAddr : "127.0.0.1", o.MasterPort, o.MasterPortGiven, line => stderr.WriteLine($"{Tag} {line}"));
            NodeLaunchSpec Spec(int restart) => NodeSpec(o, plan.World, o.NoSsh ? o.NodeRank : 0,
                restart == 0 || o.NoSsh ? token : RankEnvironment.NewJobToken(), // --no_ssh nodes share the user's token
                program.Command, JobRestarts.WithCount(exports, restart), cwd, savePidOwner: o.SavePid ? Environment.ProcessId : 0);
            var spec = Spec(0);
            if (!o.DryRun) return JobRestarts.Run(o, plan.World, (restart, _) => NodeLauncher.RunOnce(Spec(restart), stdout, stderr), stderr);
            foreach (var c in NodeLauncher.RankCommands(spec))
                stdout.WriteLine($"rank {c.Rank}: {ShellWords.Join(c.Environment.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"))} {ShellWords.Join(c.Command)}");
            return 0;
        }

        var runner = MultiNodeRunners.For(o.Launcher);
        if (runner.Name != "pdsh" && (o.NumNodes != -1 || o.NumGpus != -1 || o.Include.Length > 0 || o.Exclude.Length > 0))
            stderr.WriteLine($"{Tag} note: unlike DeepSpeed's {runner.Name} runner, the selection flags apply (mpirun gets a generated hostfile).");
        if (!o.DryRun && ProgramResolver.FindOnPath(runner.Backend) == null)
            throw new InvalidOperationException($"--launcher {o.Launcher}: '{runner.Backend}' is not installed (not on PATH).");
        MultiNodeContext Context(int restart, WorldInfo world) => new()
        {
            Options = o,
            World = world,
            DssCommand = dssCommand,
            Program = program.ForNodes,
            MasterAddr = o.MasterAddr.Length > 0 ? o.MasterAddr : MasterAddress.Resolve(world.Hosts[0], o, runner, o.DryRun),
            Exports = JobRestarts.WithCount(exports, restart),
            JobToken = restart == 0 ? token : RankEnvironment.NewJobToken(), // a restart is a new job: its own token and shm names
            WorkingDirectory = cwd,
            JobId = RankEnvironment.NewJobToken()[..12],
        };
        if (o.DryRun)
        {
            var planned = runner.Build(Context(0, plan.World));
            var shown = planned.Environment.Where(kv => kv.Key != RankEnvironment.JobTokenVariable).Select(kv => $"{kv.Key}={kv.Value}");
            stdout.WriteLine($"{ShellWords.Join(shown)} {ShellWords.Join(planned.Command)}".Trim());
            foreach (var line in planned.PerHost) stdout.WriteLine(line);
            return 0;
        }
        return JobRestarts.Run(o, plan.World, (restart, world) =>
        {
            var context = Context(restart, world);
            var command = runner.Build(context);
            stderr.WriteLine($"{Tag} cmd = {ShellWords.Join(command.Command)}");
            // pdsh/mpirun run under a guard that dies with this process and takes them (and so every rank) with it.
            var guarded = command with { Command = [.. dssCommand, "launch", .. ChildGuard.Arguments(command.Command, o.GracePeriodSeconds)] };
            bool tokenFiles = runner is PdshRunner;
            if (tokenFiles) TokenDelivery.ToHosts(context, context.JobToken, local: PdshRunner.RemoteCommandType(ShellWords.Split(o.LauncherArgs)) == "exec");
            try { return MultiNodeSupervisor.RunOnce(guarded, o.GracePeriodSeconds, stdout, stderr); }
            finally { if (tokenFiles) TokenDelivery.RemoveLocal(context); }
        }, stderr);
    }

    /// <summary>The command that starts this <c>dss</c> again (on other hosts, by the same path).</summary>
    public static IReadOnlyList<string> CurrentDssCommand()
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
        bool viaDotnet = Path.GetFileNameWithoutExtension(host) == "dotnet" && !string.IsNullOrEmpty(entry);
        return viaDotnet ? [host, entry!] : [host];
    }

    private static string JobToken(LaunchOptions o, LaunchPlan plan, IReadOnlyDictionary<string, string> environment)
    {
        if (!o.NoSsh || plan.World.NodeCount == 1) return RankEnvironment.NewJobToken();
        if (environment.TryGetValue(RankEnvironment.JobTokenVariable, out var t) && t.Length > 0) return t;
        throw new ArgumentException($"--no_ssh with several nodes: every node must share the job token; set {RankEnvironment.JobTokenVariable} " +
                                    "to the same random value on each node (e.g. `export DSS_JOB_TOKEN=$(openssl rand -hex 16)` once, then copy it).");
    }

    private static int RunNode(LaunchOptions o, TextWriter stdout, TextWriter stderr)
    {
        if (o.WorldInfo == null) throw new ArgumentException("--node_launcher needs --world_info.");
        var world = WorldInfo.Decode(o.WorldInfo);
        var spec = NodeSpec(o, world, o.NodeRank < 0 ? 0 : o.NodeRank, onlyLocal: null, watchParent: true);
        return NodeLauncher.Run(spec, stdout, stderr);
    }

    private static int RunMpiRank(LaunchOptions o, TextWriter stdout, TextWriter stderr)
    {
        if (o.WorldInfo == null) throw new ArgumentException("--mpi_rank_launcher needs --world_info.");
        var world = WorldInfo.Decode(o.WorldInfo);
        var rankText = Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK") ?? Environment.GetEnvironmentVariable("PMI_RANK");
        var sizeText = Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") ?? Environment.GetEnvironmentVariable("PMI_SIZE");
        if (!int.TryParse(rankText, out int rank) || !int.TryParse(sizeText, out int size))
            throw new ArgumentException("--mpi_rank_launcher runs under mpirun: neither OMPI_COMM_WORLD_RANK/SIZE (OpenMPI) nor PMI_RANK/SIZE (MPICH) is set.");
        if (size != world.WorldSize)
            throw new ArgumentException($"mpirun started {size} ranks but the world info has {world.WorldSize} ({world.ToJson()}).");
        var (node, local) = world.Locate(rank);
        return NodeLauncher.Run(NodeSpec(o, world, node, local, watchParent: true), stdout, stderr);
    }

    /// <summary>What one node starts, from the options every launcher role shares.</summary>
    private static NodeLaunchSpec NodeSpec(LaunchOptions o, WorldInfo world, int nodeRank, string token, IReadOnlyList<string> programCommand,
        IReadOnlyDictionary<string, string> exports, string cwd, int savePidOwner, bool watchParent = false, int? onlyLocal = null) => new()
    {
        World = world,
        NodeRank = nodeRank,
        MasterAddr = o.MasterAddr.Length > 0 ? o.MasterAddr : "127.0.0.1",
        MasterPort = o.MasterPort,
        JobToken = token,
        ProgramCommand = programCommand,
        ProgramArgs = o.ProgramArgs,
        NoLocalRank = o.NoLocalRank,
        EachRankLogDir = o.EachRankLogDir,
        BindCoresToRank = o.BindCoresToRank,
        BindCoreList = o.BindCoreList,
        Exports = exports,
        WorkingDirectory = cwd,
        GracePeriodSeconds = o.GracePeriodSeconds,
        SavePidOwner = savePidOwner,
        WatchParent = watchParent,
        OnlyLocalRank = onlyLocal,
    };

    /// <summary>The spec of a node launcher started by pdsh/ssh or mpirun: exports and token come from the runner.</summary>
    private static NodeLaunchSpec NodeSpec(LaunchOptions o, WorldInfo world, int nodeRank, int? onlyLocal, bool watchParent)
    {
        var exports = o.Exports != null ? MultiNodeRunners.DecodeExports(o.Exports) : [];
        var token = o.TokenFile != null ? TokenDelivery.Read(o.TokenFile)
            : Environment.GetEnvironmentVariable(RankEnvironment.JobTokenVariable)
              ?? throw new ArgumentException($"no job token: neither {TokenDelivery.Flag} nor {RankEnvironment.JobTokenVariable} is given.");
        var cwd = o.Chdir ?? Environment.CurrentDirectory;
        var program = ProgramResolver.Resolve(o.Program, cwd, _ => { });
        return NodeSpec(o, world, nodeRank, token, program.Command, exports, cwd, o.SavePidOwner, watchParent, onlyLocal);
    }

    private static Dictionary<string, string> CurrentEnvironment()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables()) env[(string)e.Key] = (string?)e.Value ?? "";
        return env;
    }
}
