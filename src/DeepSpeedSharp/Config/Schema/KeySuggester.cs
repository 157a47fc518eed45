namespace DeepSpeedSharp.Config.Schema;

/// <summary>"did you mean" suggestions using the optimal-string-alignment (Damerau–Levenshtein) distance.</summary>
internal static class KeySuggester
{
    /// <summary>
    /// The closest candidate, or null when none is close enough to be a plausible typo (at most
    /// <paramref name="maxDistance"/> edits when given).
    /// </summary>
    public static string? Suggest(string key, IEnumerable<string> candidates, int? maxDistance = null)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            var d = Distance(key.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestDistance || (d == bestDistance && best != null && string.CompareOrdinal(c, best) < 0))
            {
                best = c;
                bestDistance = d;
            }
        }
        if (best == null) return null;
        // Allow roughly one edit per three characters, at least 2 (short keys) — beyond that it is a different word.
        var limit = maxDistance ?? Math.Max(2, Math.Max(key.Length, best.Length) / 3);
        return bestDistance <= limit ? best : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions, adjacent transpositions.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        for (var j = 1; j <= b.Length; j++)
        {
            var cost = a[i - 1] == b[j - 1] ? 0 : 1;
            var v = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = Math.Min(v, d[i - 2, j - 2] + 1);
            d[i, j] = v;
        }
        return d[a.Length, b.Length];
    }
}
