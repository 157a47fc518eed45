using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The error lines the ranks of one node printed, so that an error every rank hits alike (a config the world size
/// cannot take, a bad option) reaches the terminal once: the first rank's line is shown, the same text from the other
/// ranks is counted instead of printed. Also the node's output lock (the ranks' lines and the launcher's reports are
/// written under it).
/// </summary>
internal sealed partial class RepeatedErrors
{
    private readonly Dictionary<string, List<int>> said = new(StringComparer.Ordinal);

    /// <summary>"gpt: error: …", "[dss] error: …": a program's own one-line error.</summary>
    [GeneratedRegex(@"^(\[[\w .-]+\]|[\w.-]+): error: ")]
    private static partial Regex ErrorLine();

    /// <summary>True when <paramref name="line"/> is a program's error line.</summary>
    public static bool IsError(string line) => ErrorLine().IsMatch(line);

    /// <summary>
    /// Records that <paramref name="rank"/> printed <paramref name="line"/>; false when it is an error line another rank
    /// already printed (then it is not shown again). Call under the lock.
    /// </summary>
    public bool Show(int rank, string line)
    {
        if (!IsError(line)) return true;
        if (!said.TryGetValue(line, out var ranks)) said[line] = ranks = new List<int>();
        if (!ranks.Contains(rank)) ranks.Add(rank);
        return ranks[0] == rank;
    }

    /// <summary>The ranks that printed error line <paramref name="line"/>, in the order they printed it.</summary>
    public IReadOnlyList<int> RanksThatSaid(string line)
    {
        lock (this) return said.TryGetValue(line, out var ranks) ? ranks.ToList() : [];
    }
}
