using System.Text;

namespace DeepSpeedSharp.Comm;

/// <summary>
/// DeepSpeed's comms logger (config section `comms_logger`: enabled, verbose, prof_all, prof_ops):
/// per-operation counts, bytes, latency, algbw and busbw. <see cref="BytesSent"/> is counted always.
/// </summary>
public sealed class CommsLogger
{
    private readonly object _lock = new();
    private readonly Dictionary<string, OpStats> _stats = new(StringComparer.Ordinal);
    private HashSet<string> _profOps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _crossHostByOp = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _sentByOp = new(StringComparer.Ordinal);

    /// <summary>Whether statistics are recorded.</summary>
    public bool Enabled { get; private set; }

    /// <summary>Whether each operation is printed as it completes.</summary>
    public bool Verbose { get; private set; }

    /// <summary>Whether every operation is profiled (otherwise only <c>prof_ops</c>).</summary>
    public bool ProfAll { get; private set; } = true;

    /// <summary>Applies the `comms_logger` config values.</summary>
    public void Configure(bool enabled, bool verbose = false, bool profAll = true, IReadOnlyList<string>? profOps = null)
    {
        lock (_lock)
        {
            Enabled = enabled;
            Verbose = verbose;
            ProfAll = profAll;
            _profOps = new HashSet<string>(profOps ?? [], StringComparer.Ordinal);
        }
    }

    /// <summary>Cumulative bytes this rank sent to other ranks (per the algorithm's volume: all_reduce 2(n-1)/n × size, etc.).</summary>
    public long BytesSent
    {
        get { lock (_lock) return _sentByOp.Values.Sum(); }
    }

    /// <summary>Of <see cref="BytesSent"/>, the bytes that left this rank's host (to ranks with another host id).</summary>
    public long BytesSentCrossHost
    {
        get { lock (_lock) return _crossHostByOp.Values.Sum(); }
    }

    /// <summary>Of <see cref="BytesSent"/>, the bytes sent to ranks on the same host.</summary>
    public long BytesSentWithinHost => BytesSent - BytesSentCrossHost;

    /// <summary>Bytes sent per operation name (e.g. "all_gather"), counted always.</summary>
    public IReadOnlyDictionary<string, long> BytesSentByOp
    {
        get { lock (_lock) return new Dictionary<string, long>(_sentByOp); }
    }

    /// <summary>Bytes sent to other hosts per operation name, counted always.</summary>
    public IReadOnlyDictionary<string, long> BytesSentCrossHostByOp
    {
        get { lock (_lock) return new Dictionary<string, long>(_crossHostByOp); }
    }

    /// <summary>Snapshot of the statistics keyed by "op|bytes".</summary>
    public IReadOnlyDictionary<string, OpStats> Stats
    {
        get { lock (_lock) return new Dictionary<string, OpStats>(_stats); }
    }

    /// <summary>Clears statistics and <see cref="BytesSent"/>.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _stats.Clear();
            _sentByOp.Clear();
            _crossHostByOp.Clear();
        }
    }

    /// <summary>The nccl-tests bus-bandwidth factor of an operation at group size <paramref name="n"/>.</summary>
    public static double BusBandwidthFactor(string op, int n) => n <= 1 ? 1.0 : op switch
    {
        "all_reduce" => 2.0 * (n - 1) / n,
        "reduce_scatter" or "all_gather" or "all_to_all" => (double)(n - 1) / n,
        _ => 1.0,
    };

    internal void AddBytesSent(string op, long bytes, long crossHost)
    {
        if (bytes == 0) return;
        lock (_lock)
        {
            _sentByOp[op] = _sentByOp.GetValueOrDefault(op) + bytes;
            _crossHostByOp[op] = _crossHostByOp.GetValueOrDefault(op) + crossHost;
        }
    }

    internal bool ShouldProfile(string op) => Enabled && (ProfAll || _profOps.Contains(op));

    internal void Record(string op, long messageBytes, int groupSize, TimeSpan elapsed, int globalRank)
    {
        if (!ShouldProfile(op)) return;
        double seconds = Math.Max(elapsed.TotalSeconds, 1e-9);
        double algbw = messageBytes / seconds / 1e9;
        double busbw = algbw * BusBandwidthFactor(op, groupSize);
        lock (_lock)
        {
            string key = op + "|" + messageBytes;
            if (!_stats.TryGetValue(key, out var s)) _stats[key] = s = new OpStats { Operation = op, MessageBytes = messageBytes };
            s.Count++;
            s.TotalTime += elapsed;
            s.AlgBwSum += algbw;
            s.BusBwSum += busbw;
        }
        if (Verbose)
            Console.WriteLine($"[rank {globalRank}] comm op: {op} | time (ms): {elapsed.TotalMilliseconds:F3} | msg size: {FormatBytes(messageBytes)} | algbw (GB/s): {algbw:F2} | busbw (GB/s): {busbw:F2}");
    }

    /// <summary>A table of the statistics, one line per (operation, size), like deepspeed.comm.log_summary.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{"Comm. Op",-16}{"Message Size",14}{"Count",8}{"Total Latency(ms)",20}{"Avg Latency(ms)",18}{"tput_avg (GB/s)",17}{"busbw_avg (GB/s)",18}");
        lock (_lock)
        {
            foreach (var s in _stats.Values.OrderBy(s => s.Operation, StringComparer.Ordinal).ThenBy(s => s.MessageBytes))
                sb.AppendLine($"{s.Operation,-16}{FormatBytes(s.MessageBytes),14}{s.Count,8}{s.TotalTime.TotalMilliseconds,20:F2}{s.MeanLatencyMs,18:F3}{s.MeanAlgBwGBps,17:F2}{s.MeanBusBwGBps,18:F2}");
        }
        sb.AppendLine($"bytes sent by this rank: {FormatBytes(BytesSent)} ({FormatBytes(BytesSentCrossHost)} to other hosts, {FormatBytes(BytesSentWithinHost)} within the host)");
        return sb.ToString();
    }

    /// <summary>Formats a byte count as B/KB/MB/GB (powers of 1024).</summary>
    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.##} KB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.##} MB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.##} GB",
    };
}
