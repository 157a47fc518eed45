using System.Globalization;
using System.Text;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// One operation a rank is running, as its heartbeat carries it for the deadlock check: which group (its number, the
/// same on every member), the group's sequence number, the peer of a point-to-point operation, the members, and
/// whether a thread of the rank waits for it (<see cref="Blocked"/>: the rank cannot go on until it completes).
/// <see cref="OpLabel.NewGroup"/> stands for a group being created (its label's group number is the new group's).
/// </summary>
internal sealed record PendingOp(long Token, OpLabel Label, bool Blocked, string? CallSite)
{
    /// <summary>Separates a heartbeat's human-readable text from its pending operations.</summary>
    public const char Separator = '\u001e';

    /// <summary>True when <paramref name="other"/>, running on rank <paramref name="otherRank"/>, is the counterpart
    /// of this operation of rank <paramref name="me"/>: the same collective (group and number), the same group under
    /// construction, or the send that this receive waits for (and the reverse).</summary>
    public bool MatchedBy(int me, PendingOp other, int otherRank)
    {
        var a = Label;
        var b = other.Label;
        if (a.GroupId != b.GroupId) return false;
        if (a.Peer < 0) return b.Peer < 0 && a.Seq == b.Seq && a.Name == b.Name;
        return a.Peer == otherRank && b.Peer == me && (a.Name, b.Name) is ("send", "recv") or ("recv", "send");
    }

    /// <summary>The global ranks this operation needs to take part (besides <paramref name="me"/>).</summary>
    public IEnumerable<int> Needs(int me) => Label.Peer >= 0 ? [Label.Peer] : Label.Ranks.Where(r => r != me);

    /// <summary>The operation's label ("new_group (group 3 over ranks 0,1)", "recv from rank 1"), with where it was called when known.</summary>
    public string Describe() => Label + (CallSite != null ? $", called at {CallSite}" : "");

    /// <summary>Encodes a rank's pending operations for its heartbeat.</summary>
    public static string Encode(IEnumerable<PendingOp> ops)
    {
        var sb = new StringBuilder();
        foreach (var o in ops)
        {
            var l = o.Label;
            sb.Append(o.Token).Append(',').Append(l.GroupId).Append(',').Append(l.Seq).Append(',').Append(l.Peer).Append(',')
              .Append(l.Name).Append(',').Append(o.Blocked ? 'b' : 'r').Append(',').Append(string.Join(' ', l.Ranks)).Append(',')
              .Append((o.CallSite ?? "").Replace(';', ' ').Replace(',', ' ')).Append(';');
        }
        return sb.ToString();
    }

    /// <summary>Decodes <see cref="Encode"/>'s text; entries that do not parse are skipped.</summary>
    public static List<PendingOp> Parse(string text)
    {
        var ops = new List<PendingOp>();
        foreach (var e in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = e.Split(',');
            if (f.Length != 8 || !long.TryParse(f[0], CultureInfo.InvariantCulture, out var token) || !int.TryParse(f[1], CultureInfo.InvariantCulture, out var gid)
                || !long.TryParse(f[2], CultureInfo.InvariantCulture, out var seq) || !int.TryParse(f[3], CultureInfo.InvariantCulture, out var peer)) continue;
            var ranks = f[6].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(r => int.TryParse(r, CultureInfo.InvariantCulture, out var x) ? x : -1).ToArray();
            if (ranks.Any(r => r < 0)) continue;
            ops.Add(new PendingOp(token, new OpLabel(f[4], seq, ranks, peer, gid), f[5] == "b", f[7].Length > 0 ? f[7] : null));
        }
        return ops;
    }
}
