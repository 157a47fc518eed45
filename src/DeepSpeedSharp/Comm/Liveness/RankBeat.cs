namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>A rank's last heartbeat as the store holds it: its age, its line for people, and its pending operations.</summary>
internal sealed record RankBeat(long AgeMs, string Status, List<PendingOp> Pending)
{
    /// <summary>Splits a heartbeat's text into the line and the pending operations (<see cref="PendingOp.Separator"/>).</summary>
    public static RankBeat Of(long ageMs, string text)
    {
        int at = text.IndexOf(PendingOp.Separator);
        return at < 0 ? new RankBeat(ageMs, text, []) : new RankBeat(ageMs, text[..at], PendingOp.Parse(text[(at + 1)..]));
    }

    /// <summary>What a heartbeat carries: the line, then the pending operations.</summary>
    public static string Text(string status, IEnumerable<PendingOp> pending) => status + PendingOp.Separator + PendingOp.Encode(pending);
}
