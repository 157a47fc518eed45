using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>
/// When <c>dss launch PROJECT_DIR</c> announces its build: the cheap look at file times that decides whether a person
/// is told "building … (the first build takes about a minute)" before it and the time after it.
/// </summary>
public class ProjectBuildTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("dss-projectbuild-").FullName;
    private readonly DateTime _past = DateTime.UtcNow.AddHours(-2);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Write(string relative, string text, DateTime time)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        File.SetLastWriteTimeUtc(path, time);
        return path;
    }

    private (string Project, string Assembly) App()
    {
        var project = Write("app/App.csproj", """<Project Sdk="Microsoft.NET.Sdk"><ItemGroup><ProjectReference Include="../lib/Lib.csproj" /></ItemGroup></Project>""", _past);
        Write("app/Program.cs", "", _past);
        Write("lib/Lib.csproj", """<Project Sdk="Microsoft.NET.Sdk" />""", _past);
        Write("lib/Code/Thing.cs", "", _past);
        return (project, Path.Combine(_root, "app/bin/Release/net10.0/App.dll"));
    }

    [Fact]
    public void AMissingAssemblyIsAFirstBuild()
    {
        var (project, assembly) = App();
        Assert.Equal("the first build takes about a minute", ProjectBuild.StaleReason(project, assembly));
    }

    [Fact]
    public void AnAssemblyNewerThanEverySourceIsUpToDate()
    {
        var (project, assembly) = App();
        Write("app/bin/Release/net10.0/App.dll", "", _past.AddMinutes(5));
        Write("app/obj/Release/net10.0/Generated.cs", "", _past.AddMinutes(9)); // bin/ and obj/ are outputs
        Assert.Null(ProjectBuild.StaleReason(project, assembly));
    }

    [Fact]
    public void ASourceChangedInAReferencedProjectIsNamed()
    {
        var (project, assembly) = App();
        Write("app/bin/Release/net10.0/App.dll", "", _past.AddMinutes(5));
        Write("lib/Code/Thing.cs", "changed", _past.AddMinutes(10));
        Assert.Equal("Thing.cs changed since the last build", ProjectBuild.StaleReason(project, assembly));
    }

    [Fact]
    public void AReferencedLibraryRebuiltBesideTheAssemblyCountsAsBuilt()
    {
        // The library was rebuilt after its change and copied beside App.dll, which the compiler left as it was.
        var (project, assembly) = App();
        Write("app/bin/Release/net10.0/App.dll", "", _past.AddMinutes(5));
        Write("lib/Code/Thing.cs", "changed", _past.AddMinutes(10));
        Write("app/bin/Release/net10.0/Lib.dll", "", _past.AddMinutes(11));
        Assert.Null(ProjectBuild.StaleReason(project, assembly));
    }
}
