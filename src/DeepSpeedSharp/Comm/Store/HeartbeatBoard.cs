using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace DeepSpeedSharp.Comm.Store;

/// <summary>
/// The store's record of every rank's heartbeat: when it last arrived (on the store's own clock, so ranks on hosts
/// with different clocks compare fairly) and the status text it carried (what the rank was doing). A BEAT request
/// records one rank's beat and answers with the age of every rank's last beat; a STATUS request answers with every
/// rank's age and status text.
/// </summary>
internal sealed class HeartbeatBoard
{
    private readonly Dictionary<int, (long Timestamp, string Status)> _beats = new();

    /// <summary>Records <paramref name="rank"/>'s beat and returns the BEAT reply: Ok, then (rank i32, age ms i64) per rank.</summary>
    public byte[] Beat(int rank, ReadOnlySpan<byte> status)
    {
        if (rank < 0) throw new InvalidDataException($"heartbeat from invalid rank {rank}.");
        if (status.Length > StoreProtocol.MaxStatus) throw new InvalidDataException($"heartbeat status of {status.Length} bytes exceeds {StoreProtocol.MaxStatus}.");
        long now = Stopwatch.GetTimestamp();
        lock (_beats)
        {
            _beats[rank] = (now, Encoding.UTF8.GetString(status));
            var reply = new byte[1 + 12 * _beats.Count];
            reply[0] = StoreProtocol.Ok;
            int at = 1;
            foreach (var (r, b) in _beats)
            {
                BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(at), r);
                BinaryPrimitives.WriteInt64LittleEndian(reply.AsSpan(at + 4), (long)Stopwatch.GetElapsedTime(b.Timestamp, now).TotalMilliseconds);
                at += 12;
            }
            return reply;
        }
    }

    /// <summary>The STATUS reply: Ok, then one UTF-8 line per rank, "rank TAB age-ms TAB status".</summary>
    public byte[] Statuses()
    {
        long now = Stopwatch.GetTimestamp();
        var sb = new StringBuilder();
        lock (_beats)
            foreach (var (r, b) in _beats.OrderBy(kv => kv.Key))
                sb.Append(r).Append('\t').Append((long)Stopwatch.GetElapsedTime(b.Timestamp, now).TotalMilliseconds)
                  .Append('\t').Append(b.Status.ReplaceLineEndings(" ")).Append('\n');
        return [StoreProtocol.Ok, .. Encoding.UTF8.GetBytes(sb.ToString())];
    }

    /// <summary>Parses a BEAT reply into age (ms) by rank.</summary>
    public static Dictionary<int, long> ParseAges(byte[] reply)
    {
        if (reply[0] != StoreProtocol.Ok || (reply.Length - 1) % 12 != 0) throw new InvalidDataException("malformed heartbeat reply from the rendezvous store.");
        var ages = new Dictionary<int, long>();
        for (int at = 1; at < reply.Length; at += 12)
            ages[BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(at))] = BinaryPrimitives.ReadInt64LittleEndian(reply.AsSpan(at + 4));
        return ages;
    }

    /// <summary>Parses a STATUS reply into (age ms, status) by rank.</summary>
    public static Dictionary<int, (long AgeMs, string Status)> ParseStatuses(byte[] reply)
    {
        if (reply[0] != StoreProtocol.Ok) throw new InvalidDataException("malformed status reply from the rendezvous store.");
        var result = new Dictionary<int, (long, string)>();
        foreach (var line in Encoding.UTF8.GetString(reply, 1, reply.Length - 1).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('\t', 3);
            if (f.Length == 3 && int.TryParse(f[0], out var r) && long.TryParse(f[1], out var age)) result[r] = (age, f[2]);
        }
        return result;
    }
}
