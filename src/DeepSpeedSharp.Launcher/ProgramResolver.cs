namespace DeepSpeedSharp.Launcher;

/// <summary>
/// Turns <c>dss launch</c>'s PROGRAM into a command: <c>X.dll</c> → <c>dotnet /abs/X.dll</c>; a directory holding
/// one project file → <c>dotnet build -c Release</c> once, then its assembly; anything else → executed directly
/// (a path, or a name looked up on PATH).
/// </summary>
public static class ProgramResolver
{
    /// <summary>The resolved program.</summary>
    /// <param name="Command">The argument vector that starts it (before --local_rank and the user's arguments).</param>
    /// <param name="ForNodes">What to hand to the per-node launchers as PROGRAM (a .dll or executable path, never a directory).</param>
    public sealed record Resolved(IReadOnlyList<string> Command, string ForNodes);

    /// <summary>Resolves <paramref name="program"/> relative to <paramref name="workingDirectory"/>.</summary>
    /// <param name="program">PROGRAM as the user typed it.</param>
    /// <param name="workingDirectory">Directory relative paths are taken from.</param>
    /// <param name="log">Receives progress lines (the build).</param>
    /// <param name="dryRun">When true a project directory is not built; its assembly path is still queried.</param>
    /// <exception cref="ArgumentException">PROGRAM does not exist, or the directory has no or several projects.</exception>
    /// <exception cref="InvalidOperationException">The build failed.</exception>
    public static Resolved Resolve(string program, string workingDirectory, Action<string> log, bool dryRun = false)
    {
        var full = Path.GetFullPath(program, workingDirectory);
        if (program.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(full)) throw new ArgumentException($"PROGRAM '{program}': no such assembly ({full}).");
            return new(["dotnet", full], full);
        }
        if (Directory.Exists(full))
        {
            var projects = Directory.GetFiles(full, "*.*proj").Where(p => p.EndsWith(".csproj") || p.EndsWith(".fsproj") || p.EndsWith(".vbproj")).ToList();
            if (projects.Count != 1)
                throw new ArgumentException($"PROGRAM '{program}' is a directory with {projects.Count} project files; it needs exactly one .csproj/.fsproj/.vbproj.");
            var dll = ProjectBuild.Build(projects[0], program, log, dryRun);
            return new(["dotnet", dll], dll);
        }
        if (File.Exists(full)) return new([full], full);
        if (!program.Contains('/') && FindOnPath(program) is { } onPath) return new([onPath], onPath);
        throw new ArgumentException($"PROGRAM '{program}' is neither a .dll, a project directory nor an executable (not found at {full} or on PATH).");
    }

    /// <summary>Finds an executable file on PATH.</summary>
    public static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0))
                return candidate;
        }
        return null;
    }
}
