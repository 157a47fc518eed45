using System.Diagnostics;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>A `dotnet dss.dll ...` process started by a test, with its output captured; killed (with its tree) on dispose.</summary>
internal sealed class DssProcess : IDisposable
{
    public static string Bin => AppContext.BaseDirectory;
    public static string Worker => Path.Combine(Bin, "DeepSpeedSharp.TestWorker.dll");
    public static string Dss => Path.Combine(Bin, "dss.dll");

    private readonly ChildProcess _p;

    public DssProcess(string workingDirectory, params string[] args) : this(workingDirectory, new Dictionary<string, string>(), args) { }

    /// <summary>Starts dss with <paramref name="environment"/> added to the test's environment (the ranks inherit it).</summary>
    public DssProcess(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) :
        this(workingDirectory, environment, false, args) { }

    private DssProcess(string workingDirectory, IReadOnlyDictionary<string, string> environment, bool defaultSigint, string[] args) =>
        _p = defaultSigint
            ? new ChildProcess("env", ["--default-signal=INT", "dotnet", Dss, .. args], workingDirectory, environment.ToDictionary(kv => kv.Key, kv => (string?)kv.Value))
            : new ChildProcess("dotnet", [Dss, .. args], workingDirectory, environment.ToDictionary(kv => kv.Key, kv => (string?)kv.Value));

    /// <summary>
    /// Starts dss with SIGINT at its default disposition, whatever the test host inherited: a suite started as a
    /// background job (<c>cmd &amp;</c> in a script) has SIGINT ignored, which children inherit and .NET then leaves
    /// ignored, as a background job should. <c>env --default-signal</c> execs dotnet, so <see cref="Pid"/> is dss itself.
    /// </summary>
    public static DssProcess ListeningForSigint(string workingDirectory, params string[] args) => new(workingDirectory, new Dictionary<string, string>(), true, args);

    public int Pid => _p.Pid;

    /// <summary>True once dss exited.</summary>
    public bool HasExited => _p.HasExited;

    public string Output => _p.Stdout;

    public string Error => _p.Stderr;

    /// <summary>Waits for exit; returns the exit code, failing the test with the output on timeout.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout)) Assert.Fail($"dss did not exit within {timeout.TotalSeconds} s.\nstdout:\n{Output}\nstderr:\n{Error}");
        return _p.ExitCode;
    }

    /// <summary>Waits until <paramref name="count"/> rank pid files exist in <paramref name="dir"/>; returns rank → pid.</summary>
    public Dictionary<int, int> WaitForPids(string dir, int count, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (Directory.GetFiles(dir, "*.pid").Length < count)
        {
            if (_p.HasExited || sw.Elapsed > timeout)
                Assert.Fail($"only {Directory.GetFiles(dir, "*.pid").Length} of {count} ranks started (dss exited: {_p.HasExited}).\nstdout:\n{Output}\nstderr:\n{Error}");
            Thread.Sleep(20);
        }
        return Directory.GetFiles(dir, "*.pid").ToDictionary(
            f => int.Parse(Path.GetFileName(f)[4..^4]), f => int.Parse(File.ReadAllText(f)));
    }

    public void Dispose() => _p.Dispose();
}

/// <summary>A fact that is skipped when <c>pdsh</c> is not installed (.ci/run installs it).</summary>
public sealed class PdshFactAttribute : FactAttribute
{
    public PdshFactAttribute()
    {
        if (ProgramResolver.FindOnPath("pdsh") == null) Skip = "pdsh is not installed (apt-get install pdsh)";
    }
}

/// <summary>A fact that is skipped when OpenMPI's <c>mpirun</c> is not installed (.ci/run installs it).</summary>
public sealed class OpenMpiFactAttribute : FactAttribute
{
    public OpenMpiFactAttribute()
    {
        if (ProgramResolver.FindOnPath("ompi_info") == null) Skip = "OpenMPI is not installed (apt-get install openmpi-bin)";
    }
}
