namespace DeepSpeedSharp.Comm;

/// <summary>
/// A collective or point-to-point operation failed on this rank: a peer died, the operation exceeded the
/// timeout, or the ranks disagreed about which operation runs at a sequence number.
/// </summary>
public sealed class DistributedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DistributedException(string operation, long sequenceNumber, IReadOnlyList<int> missingRanks, string message, Exception? inner = null)
        : base(message, inner)
    {
        Operation = operation;
        SequenceNumber = sequenceNumber;
        MissingRanks = missingRanks;
    }

    /// <summary>The operation's name, e.g. "all_reduce".</summary>
    public string Operation { get; }

    /// <summary>The group's sequence number of the failed operation (p2p: the pair's message number).</summary>
    public long SequenceNumber { get; }

    /// <summary>The global ranks that died or never arrived (empty for a mismatch).</summary>
    public IReadOnlyList<int> MissingRanks { get; }

    /// <summary>
    /// The global ranks that froze: they stopped sending heartbeats (a stopped process or a host that is gone), as
    /// opposed to ranks that are alive but slow. Empty unless that is why the operation failed.
    /// </summary>
    public IReadOnlyList<int> FrozenRanks { get; init; } = [];
}
