namespace DeepSpeedSharp.Launcher;

/// <summary>
/// DeepSpeed's default multi-node runner: <c>pdsh -S -f 1024 -w host1,host2 [launcher_args] dss launch
/// --node_launcher --node_rank=%n ...</c>; pdsh replaces <c>%n</c> with each host's index in the <c>-w</c> list.
/// The remote command is shell-quoted for pdsh's ssh/rsh modules and passed as plain words for its
/// <c>exec</c> module (<c>--launcher_args "-R exec"</c>, where each "host" becomes a local process).
/// Exports and the working directory travel as flags of the node launcher instead of DeepSpeed's
/// <c>export ...; cd ...;</c> prefix, so the same command works with every pdsh module; the job token travels in a
/// 0600 file written before pdsh starts (<see cref="TokenDelivery"/>), never on a command line. <c>--node_wrapper</c>'s
/// words come first in the remote command (e.g. <c>nsenter --net=/run/netns/%h --</c>, which runs each "host" of the
/// exec module in its own network namespace: benchmarks/cluster); pdsh replaces their <c>%h</c> with the host's name.
/// </summary>
public sealed class PdshRunner : IMultiNodeRunner
{
    /// <summary>pdsh's maximum fan-out, as DeepSpeed sets it.</summary>
    public const int MaxFanOut = 1024;

    /// <inheritdoc />
    public string Name => "pdsh";

    /// <inheritdoc />
    public string Backend => "pdsh";

    /// <summary>The pdsh remote-command module selected by -R in --launcher_args (default ssh, as DeepSpeed sets).</summary>
    public static string RemoteCommandType(IReadOnlyList<string> launcherArgs)
    {
        for (int i = 0; i < launcherArgs.Count; i++)
        {
            if (launcherArgs[i] == "-R" && i + 1 < launcherArgs.Count) return launcherArgs[i + 1];
            if (launcherArgs[i].StartsWith("-R", StringComparison.Ordinal) && launcherArgs[i].Length > 2) return launcherArgs[i][2..];
        }
        return "ssh";
    }

    /// <inheritdoc />
    public MultiNodeCommand Build(MultiNodeContext c)
    {
        var launcherArgs = ShellWords.Split(c.Options.LauncherArgs);
        string rcmd = RemoteCommandType(launcherArgs);
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!launcherArgs.Any(a => a.StartsWith("-R", StringComparison.Ordinal))) env["PDSH_RCMD_TYPE"] = "ssh";
        if (c.Options.SshPort is { } port)
            env["PDSH_SSH_ARGS_APPEND"] = $"{Environment.GetEnvironmentVariable("PDSH_SSH_ARGS_APPEND")} -p {port}".Trim();

        var pdsh = new List<string> { "pdsh", "-S", "-f", MaxFanOut.ToString(), "-w", string.Join(",", c.World.Hosts) };
        pdsh.AddRange(launcherArgs);
        // pdsh substitutes %n/%h/%u in the remote command: escape every literal '%', then add the node rank placeholder.
        var remote = MultiNodeRunners.LauncherArguments(c, "--node_launcher", nodeRank: null).Select(a => a.Replace("%", "%%")).ToList();
        int worldInfo = remote.IndexOf(remote.First(a => a.StartsWith("--world_info=", StringComparison.Ordinal)));
        remote.Insert(worldInfo + 1, "--node_rank=%n");
        remote.Insert(worldInfo + 2, $"{TokenDelivery.Flag}=~/{TokenDelivery.RelativePath(c.JobId, "%n")}"); // the token travels in a file, never in argv
        bool viaShell = rcmd != "exec";
        // --node_wrapper goes first, its %h left for pdsh to replace with each host's name.
        var wrapper = LaunchOptions.NodeWrapperWords(c.Options.NodeWrapper);
        remote.InsertRange(0, wrapper);
        var command = pdsh.Concat(viaShell ? remote.Select(ShellWords.Quote) : remote).ToList();

        // The kill command finds this job's node launchers by their --job_id; "[x]" keeps pkill from matching itself.
        var pattern = $"job_id=[{c.JobId[0]}]{c.JobId[1..]}";
        var kill = pdsh.Concat(viaShell ? ["pkill", "-TERM", "-f", ShellWords.Quote(pattern)] : ["pkill", "-TERM", "-f", pattern]).ToList();

        var perHost = c.World.Hosts.Select((h, i) =>
            $"{h}: {ShellWords.Join(remote.Select(a => Substitute(a, i, h)))}").ToList();
        return new MultiNodeCommand(command, kill, env, perHost, new Dictionary<string, string>());
    }

    /// <summary>A remote-command word as pdsh passes it to host <paramref name="host"/> (index <paramref name="index"/>): %% → %, %n, %h.</summary>
    internal static string Substitute(string word, int index, string host)
    {
        var sb = new System.Text.StringBuilder(word.Length);
        for (int k = 0; k < word.Length; k++)
        {
            if (word[k] != '%' || k + 1 == word.Length) { sb.Append(word[k]); continue; }
            char next = word[++k];
            sb.Append(next switch { '%' => "%", 'n' => index.ToString(System.Globalization.CultureInfo.InvariantCulture), 'h' => host, _ => "%" + next });
        }
        return sb.ToString();
    }
}
