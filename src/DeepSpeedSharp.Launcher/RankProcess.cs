using System.Diagnostics;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// One rank's process: started with its environment, its output prefixed with <c>[rank N]</c> on the launcher's
/// stdout/stderr (or written to its own log file; an error line another rank already printed is not repeated, see
/// <see cref="RepeatedErrors"/>), and the last lines kept for the failure report.
/// </summary>
internal sealed class RankProcess : IDisposable
{
    private const int TailLines = 20;
    private readonly Queue<string> _tail = new();
    private readonly RepeatedErrors _sink;
    private readonly TextWriter _out, _err;
    private readonly StreamWriter? _log;
    private readonly Process _process;
    private bool _closed;

    public int Rank { get; }
    public int Pid { get; }
    public string? LogPath { get; }

    public RankProcess(int rank, IReadOnlyList<string> command, IReadOnlyDictionary<string, string> environment,
        string workingDirectory, TextWriter stdout, TextWriter stderr, RepeatedErrors sinkLock, string? logPath)
    {
        Rank = rank;
        _out = stdout;
        _err = stderr;
        _sink = sinkLock;
        LogPath = logPath;
        var psi = new ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        if (logPath != null) _log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, isError: false);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, isError: true);
        try
        {
            _process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            _log?.Dispose();
            throw new InvalidOperationException($"rank {rank}: could not start '{command[0]}': {e.Message}");
        }
        Pid = _process.Id;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Exit code; a process killed by signal S reports 128 + S (.NET's convention on Unix).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Waits for exit and for the output pipes to drain (bounded, in case a grandchild keeps them open).</summary>
    public bool WaitForExit(int milliseconds)
    {
        if (!_process.WaitForExit(milliseconds)) return false;
        var drained = Task.Run(() => _process.WaitForExit());
        drained.Wait(Math.Max(milliseconds, 1000));
        return true;
    }

    public IReadOnlyList<string> Tail()
    {
        lock (_tail) return _tail.ToList();
    }

    private void OnLine(string? line, bool isError)
    {
        if (line == null) return;
        lock (_tail)
        {
            _tail.Enqueue(line);
            while (_tail.Count > TailLines) _tail.Dequeue();
        }
        lock (_sink)
        {
            if (_closed) return;
            if (_log != null) _log.WriteLine(line);
            else if (_sink.Show(Rank, line)) (isError ? _err : _out).WriteLine($"[rank {Rank}] {line}");
        }
    }

    public void Dispose()
    {
        _process.Dispose();
        lock (_sink)
        {
            _closed = true;
            _log?.Dispose();
        }
    }
}
