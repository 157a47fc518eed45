using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// The parameters a ZeRO strategy's optimizer steps over its master partition: the master itself, or — for a client
/// optimizer with several parameter groups (<see cref="Optim.ClientOptimizer"/>) — one parameter per group, each a view
/// of the group's contiguous range of the master with the matching view of the partition gradient as its gradient (a
/// range may be empty on a rank whose partition misses the group).
/// </summary>
internal sealed class MasterGroups
{
    private readonly long[] starts;

    /// <param name="master">The master partition (1-D).</param>
    /// <param name="gradient">Its gradient buffer (same shape).</param>
    /// <param name="boundaries">Null for one group; otherwise the groups' start offsets in the master, ascending, plus
    /// the master's length: group g is [boundaries[g], boundaries[g + 1]).</param>
    public MasterGroups(Parameter master, Tensor gradient, IReadOnlyList<long>? boundaries)
    {
        if (boundaries is null || boundaries.Count <= 2)
        {
            Parameters = new[] { master };
            starts = new[] { 0L, master.numel() };
            return;
        }
        starts = boundaries.ToArray();
        var views = new Parameter[starts.Length - 1];
        using (no_grad())
            for (int g = 0; g < views.Length; g++)
            {
                long length = starts[g + 1] - starts[g];
                using var slice = master.narrow(0, starts[g], length);
                views[g] = new Parameter(slice, requires_grad: true);
                views[g].grad = gradient.narrow(0, starts[g], length);
            }
        Parameters = views;
    }

    /// <summary>The optimizer's parameters, one per group.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>The optimized parameter holding master element <paramref name="masterOffset"/>, and that element's offset in it.</summary>
    public (Parameter Optimized, long Offset) Locate(long masterOffset)
    {
        for (int g = 0; g < Parameters.Count; g++)
            if (masterOffset >= starts[g] && masterOffset < starts[g + 1]) return (Parameters[g], masterOffset - starts[g]);
        throw new ArgumentOutOfRangeException(nameof(masterOffset), masterOffset, $"outside the master partition of {starts[^1]} elements");
    }

    /// <summary>
    /// The master range [start, start + length) cut at group boundaries: (offset in the master, length, the optimized
    /// parameter, offset in it) for each non-empty piece.
    /// </summary>
    public IEnumerable<(long Start, long Length, Parameter Optimized, long Offset)> Split(long start, long length)
    {
        long end = start + length;
        for (int g = 0; g < Parameters.Count; g++)
        {
            long a = Math.Max(start, starts[g]), b = Math.Min(end, starts[g + 1]);
            if (b > a) yield return (a, b - a, Parameters[g], a - starts[g]);
        }
    }

    /// <summary>
    /// Group boundaries in a master laid out group by group: <paramref name="offsetOf"/>(i) is where parameter i's
    /// piece starts in the master (for the parameters present), <paramref name="groupSizes"/> the number of parameters
    /// of each group, in order; null without groups.
    /// </summary>
    public static long[]? Boundaries(int[]? groupSizes, int count, Func<int, long> offsetOf, long masterLength, Func<long, long>? toMaster = null)
    {
        if (groupSizes is null || groupSizes.Length <= 1) return null;
        toMaster ??= x => x;
        var b = new long[groupSizes.Length + 1];
        int first = 0;
        for (int g = 0; g < groupSizes.Length; g++)
        {
            b[g] = g == 0 ? 0 : Math.Clamp(toMaster(first < count ? offsetOf(first) : long.MaxValue / 2), 0, masterLength);
            first += groupSizes[g];
        }
        b[^1] = masterLength;
        return b;
    }
}
