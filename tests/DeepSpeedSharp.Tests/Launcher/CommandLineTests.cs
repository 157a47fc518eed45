using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>World info, rank environments and the runners' command lines, without starting processes.</summary>
public class CommandLineTests
{
    private static readonly WorldInfo TwoHosts = new([new("hostA", [0, 1]), new("hostB", [0, 2, 3])]);

    [Fact]
    public void WorldInfoReadsDeepSpeedsEncodingAndRoundTrips()
    {
        // base64.urlsafe_b64encode(json.dumps({"worker-0": [0, 1], "worker-1": [0, 2, 3]})) from Python.
        var w = WorldInfo.Decode("eyJ3b3JrZXItMCI6IFswLCAxXSwgIndvcmtlci0xIjogWzAsIDIsIDNdfQ==");
        Assert.Equal(["worker-0", "worker-1"], w.Hosts);
        Assert.Equal(5, w.WorldSize);
        Assert.Equal(w.ToJson(), WorldInfo.Decode(w.Encode()).ToJson());
        Assert.Equal((1, 2), w.Locate(4));
        Assert.Throws<ArgumentException>(() => WorldInfo.Decode("not base64!"));
    }

    [Fact]
    public void RankEnvironmentMatchesDeepSpeedsLaunch()
    {
        var env = RankEnvironment.For(TwoHosts, nodeRank: 1, localRank: 2, "10.0.0.1", 29500, "tok");
        Assert.Equal("4", env["RANK"]);
        Assert.Equal("2", env["LOCAL_RANK"]);
        Assert.Equal("5", env["WORLD_SIZE"]);
        Assert.Equal("3", env["LOCAL_SIZE"]);
        Assert.Equal("1", env["CROSS_RANK"]);
        Assert.Equal("2", env["CROSS_SIZE"]);
        Assert.Equal("10.0.0.1", env["MASTER_ADDR"]);
        Assert.Equal("29500", env["MASTER_PORT"]);
        Assert.Equal("0,2,3", env["CUDA_VISIBLE_DEVICES"]);
        Assert.Equal("tok", env["DSS_JOB_TOKEN"]);
        Assert.Matches("^[0-9a-f]{32}$", RankEnvironment.NewJobToken());
        Assert.NotEqual(RankEnvironment.NewJobToken(), RankEnvironment.NewJobToken());
    }

    private static NodeLaunchSpec Spec(bool noLocalRank = false, bool bind = false, string? cores = null) => new()
    {
        World = TwoHosts, NodeRank = 0, MasterAddr = "m", MasterPort = 1234, JobToken = "t",
        ProgramCommand = ["dotnet", "/x/train.dll"], ProgramArgs = ["--deepspeed_config", "ds.json"],
        NoLocalRank = noLocalRank, BindCoresToRank = bind, BindCoreList = cores, HostCores = 8,
        Exports = new Dictionary<string, string> { ["FROM_ENV_FILE"] = "1" },
    };

    [Fact]
    public void LocalRankGoesRightAfterTheProgramUnlessDisabled()
    {
        var cmds = NodeLauncher.RankCommands(Spec());
        Assert.Equal(["dotnet", "/x/train.dll", "--local_rank=1", "--deepspeed_config", "ds.json"], cmds[1].Command);
        Assert.Equal("1", cmds[1].Environment["FROM_ENV_FILE"]);
        Assert.Equal(["dotnet", "/x/train.dll", "--deepspeed_config", "ds.json"], NodeLauncher.RankCommands(Spec(noLocalRank: true))[0].Command);
    }

    [Fact]
    public void BindCoresSplitsTheCoreListBetweenLocalRanks()
    {
        var cmds = NodeLauncher.RankCommands(Spec(bind: true, cores: "0,2-4,7"));
        Assert.Equal(["-c", "0,2"], cmds[0].Command.Skip(1).Take(2));
        Assert.Equal(["-c", "3,4"], cmds[1].Command.Skip(1).Take(2));
        Assert.Equal("2", cmds[1].Environment["OMP_NUM_THREADS"]);
        Assert.Equal([1, 3, 4, 5, 7], CoreBinding.ParseCoreList("1,3-5,7"));
        Assert.Throws<FormatException>(() => CoreBinding.ParseCoreList("3-1"));
        Assert.Contains("at least one core", Assert.Throws<ArgumentException>(() => CoreBinding.CoresFor([0], 2, 0)).Message);
    }

    private static MultiNodeContext Context(string flags) => new()
    {
        Options = LaunchOptions.Parse([.. ShellWords.Split(flags), "/x/train.dll", "--cfg", "a b", "50%"]),
        World = TwoHosts, DssCommand = ["/usr/bin/dotnet", "/opt/dss.dll"], Program = "/x/train.dll",
        MasterAddr = "10.0.0.1", Exports = new Dictionary<string, string> { ["X"] = "y z" }, JobToken = "0123456789abcdef0123456789abcdef",
        WorkingDirectory = "/work dir", JobId = "abc123", RunnerPid = 42,
    };

    [Fact]
    public void PdshCommandMatchesDeepSpeedsShapeAndQuotesForSsh()
    {
        var cmd = new PdshRunner().Build(Context("--master_port 1234 --no_local_rank"));
        Assert.Equal(["pdsh", "-S", "-f", "1024", "-w", "hostA,hostB"], cmd.Command.Take(6));
        Assert.Equal("ssh", cmd.Environment["PDSH_RCMD_TYPE"]);
        var remote = cmd.Command.Skip(6).ToList();
        Assert.Equal(["/usr/bin/dotnet", "/opt/dss.dll", "launch", "--node_launcher"], remote.Take(4));
        Assert.Contains("--node_rank=%n", remote);
        Assert.Contains("'--token_file=~/.dss/job-abc123-%n.token'", remote); // the token travels in a file, not in argv
        Assert.DoesNotContain(cmd.Command.Concat(cmd.PerHost), a => a.Contains("0123456789abcdef", StringComparison.Ordinal));
        Assert.Contains("--master_addr=10.0.0.1", remote);
        Assert.Contains("--master_port=1234", remote);
        Assert.Contains("--no_local_rank", remote);
        Assert.Contains("'--chdir=/work dir'", remote);
        Assert.Equal(["--", "/x/train.dll", "--cfg", "'a b'", "50%%"], remote.TakeLast(5));
        var exports = MultiNodeRunners.DecodeExports(remote.Single(a => a.StartsWith("--exports=")).Split('=', 2)[1]);
        Assert.Equal("y z", exports["X"]);
        Assert.Equal(["pkill", "-TERM", "-f", "'job_id=[a]bc123'"], cmd.KillCommand!.TakeLast(4));
        Assert.StartsWith("hostB: /usr/bin/dotnet /opt/dss.dll launch --node_launcher", cmd.PerHost[1]);
        Assert.Contains("--node_rank=1 ", cmd.PerHost[1]);
        Assert.Contains("--token_file=~/.dss/job-abc123-1.token' ", cmd.PerHost[1]);
        Assert.Contains(" 50%", cmd.PerHost[1]);
    }

    [Fact]
    public void PdshExecModulePassesPlainWords()
    {
        var cmd = new PdshRunner().Build(Context("--launcher_args '-R exec'"));
        Assert.Equal(["-R", "exec"], cmd.Command.Skip(6).Take(2));
        Assert.False(cmd.Environment.ContainsKey("PDSH_RCMD_TYPE"));
        Assert.Equal(["--cfg", "a b", "50%%"], cmd.Command.TakeLast(3));
        Assert.Contains("--chdir=/work dir", cmd.Command);
        Assert.Equal("job_id=[a]bc123", cmd.KillCommand![^1]);
    }

    /// <summary>Issue 31: --node_wrapper's words come first on every host, %h left for pdsh (and replaced in the dry-run lines).</summary>
    [Fact]
    public void NodeWrapperComesBeforeEachHostsLauncher()
    {
        var exec = new PdshRunner().Build(Context("--launcher_args '-R exec' --node_wrapper 'nsenter --net=/run/netns/%h --'"));
        Assert.Equal(["nsenter", "--net=/run/netns/%h", "--", "/usr/bin/dotnet", "/opt/dss.dll", "launch", "--node_launcher"], exec.Command.Skip(8).Take(7));
        Assert.StartsWith("hostB: nsenter --net=/run/netns/hostB -- /usr/bin/dotnet /opt/dss.dll launch --node_launcher", exec.PerHost[1]);
        Assert.Contains(" 50%", exec.PerHost[1]);
        Assert.Equal("job_id=[a]bc123", exec.KillCommand![^1]); // the kill command is not wrapped: pkill sees every process
        var ssh = new PdshRunner().Build(Context("--node_wrapper 'env A=\"x y\"'"));
        Assert.Equal(["env", "'A=x y'", "/usr/bin/dotnet"], ssh.Command.Skip(6).Take(3)); // quoted for the remote shell
        Assert.Equal("dss launch: --node_wrapper works with --launcher pdsh, not openmpi (mpirun starts each rank itself; wrap ranks with its own options, e.g. OpenMPI's --launch-agent).",
            Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--launcher", "openmpi", "--node_wrapper", "nsenter", "t.dll"])).Message);
        Assert.StartsWith("dss launch: --node_wrapper: unterminated '",
            Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--node_wrapper", "nsenter 'x", "t.dll"])).Message);
        Assert.StartsWith("dss launch: --node_wrapper is blank",
            Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--node_wrapper", "  ", "t.dll"])).Message);
        // Without --master_addr the first host's address is asked inside the wrapper too.
        var o = LaunchOptions.Parse(["--launcher_args", "-R exec", "--node_wrapper", "nsenter --net=/run/netns/%h --", "t.dll"]);
        Assert.Equal("$(nsenter --net=/run/netns/w0 -- hostname -I)", MasterAddress.Resolve("w0", o, new PdshRunner(), dryRun: true));
    }

    [Fact]
    public void OpenMpiGetsAGeneratedHostfileAndOneRankLauncherPerRank()
    {
        var cmd = new OpenMpiRunner().Build(Context("--launcher openmpi --launcher_args '--mca btl tcp,self'"));
        Assert.Equal(["mpirun", "--allow-run-as-root", "-np", "5", "--hostfile", OpenMpiRunner.HostfilePath("abc123"), "--bind-to", "none", "-x", "DSS_JOB_TOKEN", "--mca", "btl", "tcp,self"], cmd.Command.Take(13));
        Assert.Contains("--mpi_rank_launcher", cmd.Command);
        Assert.Equal("hostA slots=2\nhostB slots=3\n", cmd.Files[OpenMpiRunner.HostfilePath("abc123")]);
        // The token is forwarded by name from mpirun's environment, never on its command line.
        Assert.Equal(["-x", "DSS_JOB_TOKEN"], cmd.Command.Skip(8).Take(2));
        Assert.Equal("0123456789abcdef0123456789abcdef", cmd.Environment["DSS_JOB_TOKEN"]);
        Assert.DoesNotContain(cmd.Command, a => a.Contains("0123456789abcdef", StringComparison.Ordinal));
    }

    [Fact]
    public void MpichNeedsTheSameRankCountPerHost()
    {
        Assert.Contains("same number of ranks", Assert.Throws<ArgumentException>(() => new MpichRunner().Build(Context(""))).Message);
        var even = Context("") is var c ? new MultiNodeContext
        {
            Options = c.Options, World = new WorldInfo([new("a", [0, 1]), new("b", [0, 1])]), DssCommand = c.DssCommand, Program = c.Program,
            MasterAddr = c.MasterAddr, Exports = c.Exports, JobToken = c.JobToken, WorkingDirectory = c.WorkingDirectory, JobId = c.JobId,
        } : null;
        var mpich = new MpichRunner().Build(even!);
        Assert.Equal(["mpirun", "-n", "4", "-ppn", "2", "-hosts", "a,b", "-genvlist", "DSS_JOB_TOKEN"], mpich.Command.Take(9));
        Assert.Equal(c!.JobToken, mpich.Environment["DSS_JOB_TOKEN"]);
    }

    [Fact]
    public void PdshExitLinesAreRecognised()
    {
        Assert.Equal(("hostB", 3), MultiNodeSupervisor.ParseRemoteExit("pdsh@vm: hostB: dotnet exited with exit code 3"));
        Assert.Null(MultiNodeSupervisor.ParseRemoteExit("hostB: [rank 3] exited with exit code 3"));
    }

    [Fact]
    public void ShellWordsSplitAndQuoteRoundTrip()
    {
        Assert.Equal(["-R", "exec", "a b", "c\"d", "e'f", ""], ShellWords.Split("-R exec 'a b' \"c\\\"d\" e\\'f ''"));
        string[] words = ["plain", "with space", "it's", "$HOME", ""];
        Assert.Equal(words, ShellWords.Split(ShellWords.Join(words)));
        Assert.Throws<FormatException>(() => ShellWords.Split("'open"));
    }

    [Fact]
    public void OptionsParseDeepSpeedFlagsAndRejectUnknownOnes()
    {
        var o = LaunchOptions.Parse(["-H", "hosts", "--num_gpus=2", "--master_port", "1234", "--launcher", "OpenMPI", "train.dll", "--num_gpus", "9"]);
        Assert.Equal(("hosts", 2, 1234, "openmpi", "train.dll"), (o.Hostfile, o.NumGpus, o.MasterPort, o.Launcher, o.Program));
        Assert.Equal(["--num_gpus", "9"], o.ProgramArgs);
        Assert.Contains("unknown flag '--bogus'", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--bogus", "x"])).Message);
        Assert.Contains("no PROGRAM", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--num_gpus", "2"])).Message);
        Assert.Contains("needs an integer", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--num_gpus", "two", "x"])).Message);
        Assert.Contains("slurm", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--launcher", "slurm", "x"])).Message);
        Assert.Equal("dss launch: --num_gpus -3 is not a number of processes per host; give 1 or more, or -1 (the default: the hostfile's slots).",
            Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--num_gpus", "-3", "x"])).Message);
        Assert.Contains("--num_gpus 0 is not", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--num_gpus=0", "x"])).Message);
        Assert.Contains("--num_nodes -2 is not a number of hosts", Assert.Throws<ArgumentException>(() => LaunchOptions.Parse(["--num_nodes", "-2", "x"])).Message);
    }

    [Fact]
    public void DeepSpeedEnvFilesAreReadHomeFirstAndDsEnvFileRenamesThem()
    {
        var root = Directory.CreateTempSubdirectory("dss-envfile");
        try
        {
            var home = Directory.CreateDirectory(Path.Combine(root.FullName, "home")).FullName;
            var cwd = Directory.CreateDirectory(Path.Combine(root.FullName, "cwd")).FullName;
            File.WriteAllText(Path.Combine(home, ".deepspeed_env"), "A=home\nB=home=x\n");
            File.WriteAllText(Path.Combine(cwd, ".deepspeed_env"), "# comment\nA=cwd\n\n");
            File.WriteAllText(Path.Combine(cwd, "my_env"), "C=3\n");
            var env = new Dictionary<string, string> { ["NCCL_DEBUG"] = "INFO", ["HOME"] = home, ["DSS_JOB_TOKEN"] = "old" };
            var e = DeepSpeedEnvFile.Collect(env, cwd, home, includePrefixed: true);
            Assert.Equal(new Dictionary<string, string> { ["A"] = "cwd", ["B"] = "home=x", ["NCCL_DEBUG"] = "INFO" }, e);
            env["DS_ENV_FILE"] = "my_env";
            Assert.Equal(new Dictionary<string, string> { ["C"] = "3" }, DeepSpeedEnvFile.Collect(env, cwd, home, includePrefixed: false));
            File.WriteAllText(Path.Combine(cwd, "my_env"), "NOEQUALS\n");
            Assert.Contains("my_env:1", Assert.Throws<FormatException>(() => DeepSpeedEnvFile.Collect(env, cwd, home, false)).Message);
        }
        finally { root.Delete(true); }
    }

    [Fact]
    public void ALaunchErrorIsOneLineWithTheCommandNamedOnceAndExitCode2()
    {
        using var dss = new DssProcess(Path.GetTempPath(), "launch", "--num_gpus", "-3", "train.dll");
        Assert.Equal(2, dss.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal("dss launch: error: --num_gpus -3 is not a number of processes per host; give 1 or more, or -1 (the default: the hostfile's slots).",
            dss.Error.Trim());
    }
}
