using System.Diagnostics;
using System.Text;
using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>A `dotnet dss.dll ...` process started by a test, with its output captured; killed (with its tree) on dispose.</summary>
internal sealed class DssProcess : IDisposable
{
    public static string Bin => AppContext.BaseDirectory;
    public static string Worker => Path.Combine(Bin, "DeepSpeedSharp.TestWorker.dll");
    public static string Dss => Path.Combine(Bin, "dss.dll");

    private readonly Process _p;
    private readonly StringBuilder _out = new(), _err = new();

    public DssProcess(string workingDirectory, params string[] args) : this(workingDirectory, new Dictionary<string, string>(), args) { }

    /// <summary>Starts dss with <paramref name="environment"/> added to the test's environment (the ranks inherit it).</summary>
    public DssProcess(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        psi.ArgumentList.Add(Dss);
        foreach (var a in args) psi.ArgumentList.Add(a);
        _p = new Process { StartInfo = psi };
        _p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_out) _out.AppendLine(e.Data); };
        _p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_err) _err.AppendLine(e.Data); };
        _p.Start();
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    public int Pid => _p.Id;

    public string Output { get { lock (_out) return _out.ToString(); } }
    public string Error { get { lock (_err) return _err.ToString(); } }

    /// <summary>Waits for exit; returns the exit code, failing the test with the output on timeout.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout)) Assert.Fail($"dss did not exit within {timeout.TotalSeconds} s.\nstdout:\n{Output}\nstderr:\n{Error}");
        _p.WaitForExit();
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

    public void Dispose()
    {
        if (!_p.HasExited)
        {
            foreach (var pid in ProcessTree.WithDescendants(_p.Id)) ProcessTree.Signal(pid, ProcessTree.SigKill);
            _p.WaitForExit(5000);
        }
        _p.Dispose();
    }
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
