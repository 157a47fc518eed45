namespace DeepSpeedSharp.Comm;

/// <summary>Accumulated statistics of one (operation, message size) pair of the comms logger.</summary>
public sealed class OpStats
{
    /// <summary>Operation name as DeepSpeed logs it, e.g. "all_reduce".</summary>
    public required string Operation { get; init; }

    /// <summary>Message size in bytes (the tensor the caller passed, nccl-tests convention).</summary>
    public required long MessageBytes { get; init; }

    /// <summary>Number of calls.</summary>
    public long Count { get; internal set; }

    /// <summary>Sum of latencies.</summary>
    public TimeSpan TotalTime { get; internal set; }

    /// <summary>Sum of algorithm bandwidths (GB/s) for averaging.</summary>
    internal double AlgBwSum { get; set; }

    /// <summary>Sum of bus bandwidths (GB/s) for averaging.</summary>
    internal double BusBwSum { get; set; }

    /// <summary>Mean latency in milliseconds.</summary>
    public double MeanLatencyMs => Count == 0 ? 0 : TotalTime.TotalMilliseconds / Count;

    /// <summary>Mean algorithm bandwidth in GB/s (size / time).</summary>
    public double MeanAlgBwGBps => Count == 0 ? 0 : AlgBwSum / Count;

    /// <summary>Mean bus bandwidth in GB/s (algbw × the nccl-tests factor of the operation).</summary>
    public double MeanBusBwGBps => Count == 0 ? 0 : BusBwSum / Count;
}
