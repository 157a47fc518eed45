using System.Text;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// How an operation is named to users — in errors, heartbeats and the deadlock report alike, so the numbers in one
/// message can be compared with another's: "all_reduce #15 over ranks 0-3" for a collective (its group's sequence
/// number, counted the same on every member), "recv from rank 1" / "send to rank 1" for point-to-point. A backend that
/// runs an operation as several internal steps (hierarchical) keeps the operation's label for all of them.
/// </summary>
/// <param name="Name">The operation, e.g. "all_reduce".</param>
/// <param name="Seq">The group's sequence number (-1 for point-to-point).</param>
/// <param name="Ranks">The group's members (global ranks).</param>
/// <param name="Peer">The other rank (global) of a point-to-point operation, else -1.</param>
/// <param name="GroupId">The group's number within the job (the same on every member: groups are created in one order).</param>
internal readonly record struct OpLabel(string Name, long Seq, IReadOnlyList<int> Ranks, int Peer, int GroupId)
{
    /// <summary>The name of the pseudo-operation that stands for a group under construction (<c>NewGroup</c>).</summary>
    public const string NewGroup = "new_group";

    /// <summary>The label of building group <paramref name="groupId"/> over <paramref name="ranks"/>.</summary>
    public static OpLabel Creating(int groupId, IReadOnlyList<int> ranks) => new(NewGroup, -1, ranks, -1, groupId);

    /// <inheritdoc/>
    public override string ToString() => Name == NewGroup ? $"{NewGroup} (group {GroupId} over ranks {RankList(Ranks)})"
        : Peer >= 0 ? $"{Name} {(Name == "send" ? "to" : "from")} rank {Peer}"
        : Seq >= 0 ? $"{Name} #{Seq} over ranks {RankList(Ranks)}" : $"{Name} between ranks {RankList(Ranks)}";

    /// <summary>"0-3" for consecutive ranks, else "0,2,5".</summary>
    public static string RankList(IReadOnlyList<int> ranks)
    {
        bool consecutive = ranks.Count > 2 && ranks.Zip(ranks.Skip(1)).All(p => p.Second == p.First + 1);
        if (consecutive) return $"{ranks[0]}-{ranks[^1]}";
        var sb = new StringBuilder();
        for (int i = 0; i < ranks.Count; i++) sb.Append(i == 0 ? "" : ",").Append(ranks[i]);
        return sb.ToString();
    }
}
