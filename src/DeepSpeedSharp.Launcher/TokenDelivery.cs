using System.Diagnostics;
using System.Globalization;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// How the job token reaches the hosts of a pdsh job without ever being on a command line (where any local user reads
/// it with <c>ps</c>): before pdsh starts, the runner writes it to <c>~/.dss/job-ID-N.token</c> on host N — a file of
/// mode 0600 in a directory of mode 0700, created that way, locally for pdsh's exec module and through
/// <c>ssh HOST 'umask 077; … cat &gt; FILE'</c> with the token on ssh's standard input otherwise — and the node launcher
/// gets only the file's name (<c>--token_file</c>), reads the token and deletes the file before it starts a rank.
/// mpirun needs no file: it gets the token in its environment and forwards it by name (<c>-x</c>, <c>-genvlist</c>).
/// </summary>
public static class TokenDelivery
{
    /// <summary>The node launcher's flag naming the token file.</summary>
    public const string Flag = "--token_file";

    /// <summary>The token file of host <paramref name="node"/> (or pdsh's <c>%n</c>), relative to the home directory.</summary>
    public static string RelativePath(string jobId, string node) => $".dss/job-{jobId}-{node}.token";

    /// <summary>Writes the token file of every host before pdsh starts; <paramref name="local"/> for pdsh's exec module.</summary>
    public static void ToHosts(MultiNodeContext c, string token, bool local)
    {
        for (int i = 0; i < c.World.Hosts.Count; i++)
        {
            var relative = RelativePath(c.JobId, i.ToString(CultureInfo.InvariantCulture));
            if (local && !OperatingSystem.IsWindows()) WriteLocal(Expand("~/" + relative), token);
            else Ssh(c.World.Hosts[i], c.Options.SshPort, relative, token);
        }
    }

    /// <summary>Removes the token files this host still holds for the job (a node launcher that never started leaves its file).</summary>
    public static void RemoveLocal(MultiNodeContext c)
    {
        for (int i = 0; i < c.World.Hosts.Count; i++)
            File.Delete(Expand("~/" + RelativePath(c.JobId, i.ToString(CultureInfo.InvariantCulture))));
    }

    /// <summary>
    /// The node launcher's side: reads the token from <paramref name="path"/> (<c>~/</c> is the home directory), refusing a
    /// file that is not this user's or that others may read, and deletes it.
    /// </summary>
    public static string Read(string path)
    {
        var full = Expand(path);
        if (!File.Exists(full)) throw new ArgumentException($"{Flag} '{full}': no such file (the runner writes it before starting this launcher, which deletes it once read).");
        var info = new FileInfo(full);
        if ((info.UnixFileMode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            File.Delete(full);
            throw new ArgumentException($"{Flag} '{full}' is accessible to other users (mode {Convert.ToString((int)info.UnixFileMode, 8)}); refusing a job token others may have read.");
        }
        string token;
        using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read))
        {
            if (Comm.Shm.FileOwnership.OwnerOf(stream.SafeFileHandle) is { } owner && owner != Comm.Shm.FileOwnership.EffectiveUid)
                throw new ArgumentException($"{Flag} '{full}' belongs to uid {owner}, not to this user (uid {Comm.Shm.FileOwnership.EffectiveUid}); refusing it.");
            token = new StreamReader(stream).ReadToEnd().Trim();
        }
        File.Delete(full);
        if (token.Length == 0) throw new ArgumentException($"{Flag} '{full}' is empty.");
        return token;
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // pdsh runs on Unix
    private static void WriteLocal(string full, string token)
    {
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var mode = new DirectoryInfo(dir).UnixFileMode;
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            throw new InvalidOperationException($"{dir} is writable by other users (mode {Convert.ToString((int)mode, 8)}); the job token is not written there. Make it 0700.");
        using var stream = new FileStream(full, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        using var writer = new StreamWriter(stream);
        writer.Write(token);
    }

    private static void Ssh(string host, int? port, string relative, string token)
    {
        var psi = new ProcessStartInfo("ssh") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        if (port is { } p) { psi.ArgumentList.Add("-p"); psi.ArgumentList.Add(p.ToString(CultureInfo.InvariantCulture)); }
        psi.ArgumentList.Add(host);
        psi.ArgumentList.Add($"umask 077 && mkdir -p .dss && chmod 700 .dss && cat > {ShellWords.Quote(relative)}");
        using var ssh = Process.Start(psi) ?? throw new InvalidOperationException("could not start ssh");
        var error = ssh.StandardError.ReadToEndAsync();
        _ = ssh.StandardOutput.ReadToEndAsync();
        ssh.StandardInput.Write(token);
        ssh.StandardInput.Close();
        if (!ssh.WaitForExit(TimeSpan.FromSeconds(60))) { ssh.Kill(entireProcessTree: true); throw new InvalidOperationException($"ssh {host}: writing the job token file did not finish within 60 s."); }
        if (ssh.ExitCode != 0)
            throw new InvalidOperationException($"ssh {host}: could not write the job token file ~/{relative} (exit code {ssh.ExitCode}): {error.Result.Trim()}");
    }

    private static string Expand(string path) =>
        path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..]) : path;
}
