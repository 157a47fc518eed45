using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// How a pipeline module splits its layers into stages (DeepSpeed's <c>partition_method</c>): the boundaries
/// <c>parts</c> (stage s owns layers [parts[s], parts[s+1])), computed as DeepSpeed's <c>partition_uniform</c> and
/// <c>partition_balanced</c> do, so a model is split the same way here.
/// </summary>
public static class LayerPartition
{
    /// <summary>
    /// The boundaries for <paramref name="method"/>: <c>uniform</c> (equal layer counts), <c>parameters</c> (balance the
    /// trainable parameter counts <paramref name="parameterCounts"/>), or <c>type:REGEX</c> (balance the layers whose type
    /// name matches REGEX, case-insensitive, e.g. <c>type:TransformerBlock</c>).
    /// </summary>
    public static int[] Compute(string method, IReadOnlyList<long> parameterCounts, IReadOnlyList<string> typeNames, int numStages)
    {
        ArgumentNullException.ThrowIfNull(method);
        int n = parameterCounts.Count;
        string m = method.ToLowerInvariant();
        if (m == "uniform") return Uniform(n, numStages);
        if (m == "parameters") return Balanced(parameterCounts, numStages);
        if (m.StartsWith("type:", StringComparison.Ordinal))
        {
            var regex = new Regex(method[5..], RegexOptions.IgnoreCase);
            var weights = typeNames.Select(t => regex.IsMatch(t) ? 1L : 0L).ToArray();
            if (weights.All(w => w == 0))
                throw new ArgumentException($"partition method '{method}': no layer's type matches; the layer types are {string.Join(", ", typeNames.Distinct())}");
            return Balanced(weights, numStages);
        }
        throw new ArgumentException($"partition method '{method}' is not known; use 'parameters', 'uniform' or 'type:REGEX'");
    }

    /// <summary>DeepSpeed's <c>partition_uniform</c>: equal counts, the first <c>n mod parts</c> stages one layer more.</summary>
    public static int[] Uniform(int numItems, int numParts)
    {
        if (numParts < 1) throw new ArgumentOutOfRangeException(nameof(numParts), $"{numParts} stages");
        var parts = new int[numParts + 1];
        if (numItems <= numParts)
        {
            for (int p = 0; p <= numParts; p++) parts[p] = Math.Min(p, numItems);
            return parts;
        }
        int chunk = numItems / numParts, residual = numItems - chunk * numParts;
        for (int p = 0; p <= numParts; p++) parts[p] = p * chunk + Math.Min(p, residual);
        return parts;
    }

    /// <summary>
    /// DeepSpeed's <c>partition_balanced</c>: the linear partition of <paramref name="weights"/> into <paramref name="numParts"/>
    /// contiguous parts minimising (heaviest − lightest part), by dynamic programming, ties resolved as DeepSpeed does.
    /// </summary>
    public static int[] Balanced(IReadOnlyList<long> weights, int numParts)
    {
        int n = weights.Count, m = numParts;
        if (n <= m) return Uniform(n, m);
        var prefix = new double[n + 1];
        for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + weights[i];
        var dpMax = Full(n + 1, m + 1); var dpMin = Full(n + 1, m + 1); var dpCost = Full(n + 1, m + 1);
        var position = new int[n + 1, m + 1];
        dpMax[0, 0] = 0;
        dpCost[0, 0] = 0;
        for (int i = 1; i <= n; i++)
            for (int j = 1; j <= Math.Min(i, m); j++)
                for (int k = 0; k < i; k++)
                {
                    double part = prefix[i] - prefix[k];
                    double max = Math.Max(dpMax[k, j - 1], part), min = Math.Min(dpMin[k, j - 1], part);
                    double cost = max - min;
                    if (dpCost[i, j] >= cost)
                    {
                        dpCost[i, j] = cost;
                        dpMax[i, j] = max;
                        dpMin[i, j] = min;
                        position[i, j] = k;
                    }
                }
        var parts = new List<int> { n };
        for (int j = m; j >= 1; j--) parts.Add(position[parts[^1], j]);
        parts.Reverse();
        return parts.ToArray();
    }

    private static double[,] Full(int rows, int cols)
    {
        var a = new double[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) a[r, c] = double.PositiveInfinity;
        return a;
    }
}
