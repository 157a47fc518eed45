using System.Text;
using DeepSpeedSharp.Launcher;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 33 item 1: the job token is on no process's command line — pdsh, ssh, node launchers, mpirun, rank launchers,
/// ranks — and in no file others can read: pdsh jobs get it in a 0600 file each node launcher deletes once read, mpirun
/// forwards it by name from its environment. While a 2-host pdsh job (and a 2-rank OpenMPI job) runs, every process of
/// the machine is checked.
/// </summary>
[Collection(MultiProcessCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Trait("Tier", "Full")]
public class TokenExposureTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-token");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Hostfile(string text)
    {
        var hosts = Path.Combine(_dir.FullName, "hosts");
        File.WriteAllText(hosts, text);
        return hosts;
    }

    [PdshFact]
    public void UnderPdshTheTokenIsOnNoCommandLineAndItsFilesAreGone() =>
        _ = CheckWhileRunning(new DssProcess(_dir.FullName, "launch", "-H", Hostfile("hostA slots=1\nhostB slots=1\n"), "--launcher_args", "-R exec", "--master_addr", "127.0.0.1",
            "--master_port", RankProcesses.FreePort().ToString(), DssProcess.Worker, "token-hold", "3000"));

    /// <summary>
    /// pdsh's ssh module, with a stand-in <c>ssh</c> first on PATH that runs the command on this machine (in the home
    /// directory, as ssh does) and logs its arguments: the runner writes each host's token file through
    /// <c>ssh HOST 'umask 077 … cat &gt; FILE'</c> with the token on standard input, and no ssh command line holds it.
    /// </summary>
    [PdshFact]
    public void UnderPdshOverSshTheTokenGoesThroughSshsInputNotItsArguments()
    {
        var bin = Directory.CreateDirectory(Path.Combine(_dir.FullName, "bin")).FullName;
        var ssh = Path.Combine(bin, "ssh");
        File.WriteAllText(ssh, """
            #!/bin/sh
            while [ $# -gt 0 ]; do
              case "$1" in
                -p|-l|-o|-i|-F) shift 2 ;;
                -*) shift ;;
                *) break ;;
              esac
            done
            echo "ssh $*" >> "$FAKESSH_LOG"
            shift
            cd "$HOME" && exec sh -c "$*"
            """);
        File.SetUnixFileMode(ssh, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var log = Path.Combine(_dir.FullName, "ssh.log");
        var env = new Dictionary<string, string> { ["PATH"] = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}", ["FAKESSH_LOG"] = log };
        string token = CheckWhileRunning(new DssProcess(_dir.FullName, env, "launch", "-H", Hostfile("hostA slots=1\nhostB slots=1\n"),
            "--master_addr", "127.0.0.1", "--master_port", RankProcesses.FreePort().ToString(), DssProcess.Worker, "token-hold", "3000"));
        var calls = File.ReadAllLines(log);
        Assert.Equal(4, calls.Length); // a token file and a node launcher per host
        Assert.Contains(calls, c => c.StartsWith("ssh hostB umask 077 && mkdir -p .dss && chmod 700 .dss && cat > .dss/job-", StringComparison.Ordinal));
        Assert.Contains(calls, c => c.StartsWith("ssh hostB ", StringComparison.Ordinal) && c.Contains("--node_launcher") && c.Contains("-1.token"));
        Assert.DoesNotContain(calls, c => c.Contains(token, StringComparison.Ordinal));
    }

    [OpenMpiFact]
    public void UnderOpenMpiTheTokenIsOnNoCommandLine() =>
        _ = CheckWhileRunning(new DssProcess(_dir.FullName, "launch", "-H", Hostfile("localhost slots=2\n"), "--force_multi", "--launcher", "openmpi", "--master_addr", "127.0.0.1",
            "--master_port", RankProcesses.FreePort().ToString(), DssProcess.Worker, "token-hold", "3000"));

    /// <summary>Checks every process's command line while the job runs, then that it finished; returns the token.</summary>
    private static string CheckWhileRunning(DssProcess dss)
    {
        using (dss)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (CountTokens(dss.Output) < 2 && !dss.HasExited && sw.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
            var tokens = dss.Output.Split('\n').Where(l => l.Contains("TOKEN rank ")).Select(l => l.Split(": ")[^1].Trim()).Distinct().ToList();
            Assert.True(tokens.Count == 1 && tokens[0].Length >= 16, $"the ranks did not report one token:\n{dss.Output}\n{dss.Error}");
            string token = tokens[0];
            int checkedProcesses = 0;
            foreach (var proc in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
            {
                string[] argv;
                try { argv = File.ReadAllText(Path.Combine(proc, "cmdline")).Split('\0'); }
                catch (IOException) { continue; } // gone meanwhile
                checkedProcesses++;
                var line = string.Join(' ', argv);
                Assert.False(line.Contains(token, StringComparison.Ordinal), $"the token is on the command line of pid {Path.GetFileName(proc)}: {line}");
                foreach (var a in argv.Where(a => a.StartsWith("--exports=", StringComparison.Ordinal)))
                    Assert.DoesNotContain(RankEnvironment.JobTokenVariable, MultiNodeRunners.DecodeExports(a["--exports=".Length..]).Keys);
                Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes(token))[..16], line);
            }
            Assert.True(checkedProcesses > 5);
            var dssDir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dss");
            if (Directory.Exists(dssDir))
                foreach (var f in Directory.GetFiles(dssDir, "job-*.token"))
                    Assert.DoesNotContain(token, File.ReadAllText(f)); // each node launcher deleted its file once read
            Assert.True(dss.WaitForExit(TimeSpan.FromSeconds(60)) == 0, dss.Output + dss.Error);
            return token;
        }
    }

    private static int CountTokens(string output) => output.Split('\n').Count(l => l.Contains("TOKEN rank "));
}
