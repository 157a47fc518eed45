using System.Diagnostics;
using System.Xml.Linq;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// Builds a project directory given to <c>dss launch</c> (<c>dotnet build -c Release</c>) and says so while a person
/// waits: a line before a build that has work to do (the assembly is missing, or a source file of the project or of a
/// project it references is newer) and one after it with the time taken; nothing when the build was up to date and quick.
/// </summary>
public static class ProjectBuild
{
    /// <summary>An up-to-date build that takes longer than this still reports its time (a loaded machine).</summary>
    private static readonly TimeSpan SlowCheck = TimeSpan.FromSeconds(5);

    private static readonly string[] SourcePatterns = ["*.cs", "*.fs", "*.vb", "*.csproj", "*.fsproj", "*.vbproj", "*.props", "*.targets"];

    /// <summary>Builds <paramref name="project"/> in Release and returns its assembly's path.</summary>
    /// <param name="project">The project file.</param>
    /// <param name="shownAs">The project as the user named it (PROGRAM), for the progress lines.</param>
    /// <param name="log">Receives the progress lines.</param>
    /// <param name="dryRun">When true nothing is built; the assembly's path is still queried.</param>
    /// <exception cref="InvalidOperationException">The build failed, or its assembly is missing.</exception>
    public static string Build(string project, string shownAs, Action<string> log, bool dryRun)
    {
        var (qcode, path) = Dotnet(["msbuild", project, "-nologo", "-getProperty:TargetPath", "-p:Configuration=Release"]);
        path = path.Trim();
        if (qcode != 0 || path.Length == 0) throw new InvalidOperationException($"could not ask MSBuild for {project}'s TargetPath (exit code {qcode}): {path}");
        if (dryRun) return path;

        var stale = StaleReason(project, path);
        if (stale != null) log($"building {shownAs} (dotnet build -c Release; {stale})…");
        var clock = Stopwatch.StartNew();
        var (code, output) = Dotnet(["build", project, "-c", "Release", "-nologo", "-v", "q"]);
        if (code != 0) throw new InvalidOperationException($"`dotnet build -c Release {project}` failed with exit code {code}:\n{output.TrimEnd()}");
        if (stale != null) log($"built {shownAs} in {clock.Elapsed.TotalSeconds:F0} s");
        else if (clock.Elapsed > SlowCheck) log($"{shownAs} is up to date (dotnet build checked it in {clock.Elapsed.TotalSeconds:F0} s)");
        if (!File.Exists(path)) throw new InvalidOperationException($"{project} built, but its assembly {path} does not exist (is it a library or a non-.NET project?).");
        return path;
    }

    /// <summary>
    /// Why a build of <paramref name="project"/> has work to do, or null when its assembly is newer than every source
    /// file of the project and of the projects it references (a cheap look at file times; dotnet build still decides).
    /// </summary>
    internal static string? StaleReason(string project, string assembly)
    {
        if (!File.Exists(assembly)) return "the first build takes about a minute";
        // The newest assembly beside it: a referenced library rebuilt without recompiling the program is copied there.
        var built = Directory.EnumerateFiles(Path.GetDirectoryName(assembly)!, "*.dll").Append(assembly).Max(File.GetLastWriteTimeUtc);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([Path.GetFullPath(project)]);
        while (pending.Count > 0)
        {
            var file = pending.Pop();
            if (!seen.Add(file) || !File.Exists(file)) continue;
            if (NewestSource(Path.GetDirectoryName(file)!) is { } newer && newer.Time > built)
                return $"{Path.GetFileName(newer.Path)} changed since the last build";
            foreach (var reference in ProjectReferences(file)) pending.Push(reference);
        }
        return null;
    }

    private static (string Path, DateTime Time)? NewestSource(string directory)
    {
        (string, DateTime)? newest = null;
        foreach (var pattern in SourcePatterns)
        foreach (var file in Directory.EnumerateFiles(directory, pattern, SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(directory, file).Replace('\\', '/');
            if (relative.StartsWith("bin/", StringComparison.Ordinal) || relative.StartsWith("obj/", StringComparison.Ordinal)) continue;
            var time = File.GetLastWriteTimeUtc(file);
            if (newest == null || time > newest.Value.Item2) newest = (file, time);
        }
        return newest;
    }

    private static IEnumerable<string> ProjectReferences(string project)
    {
        XDocument doc;
        try { doc = XDocument.Load(project); }
        catch (Exception e) when (e is System.Xml.XmlException or IOException) { yield break; }
        var directory = Path.GetDirectoryName(project)!;
        foreach (var element in doc.Descendants().Where(e => e.Name.LocalName == "ProjectReference"))
            if (element.Attribute("Include")?.Value is { Length: > 0 } include && !include.Contains("$("))
                yield return Path.GetFullPath(include.Replace('\\', '/'), directory);
    }

    private static (int Code, string Output) Dotnet(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet.");
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }
}
