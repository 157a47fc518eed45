using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Topology;

/// <summary>
/// Every data-parallel group of the job, as global ranks, learnt from every rank (one all-gather over the world): the
/// groups hpZ and qgZ split by host must be created by all ranks in the same order, and a rank knows only its own.
/// </summary>
internal static class DataParallelMembership
{
    /// <summary>Every data-parallel group of the world (members in group order), ordered by their lowest rank. Collective over the world.</summary>
    public static List<int[]> All(ProcessGroup dataParallel)
    {
        var world = Dist.World;
        using var size = tensor(new long[] { dataParallel.Size, -dataParallel.Size });
        world.AllReduce(size, ReduceOp.Max);
        if (size[0].item<long>() != -size[1].item<long>())
            throw new InvalidOperationException("the data-parallel groups of the ranks have different sizes");
        using var mine = tensor(dataParallel.GlobalRanks.Select(r => (long)r).ToArray());
        using var all = empty(dataParallel.Size * world.Size, ScalarType.Int64);
        world.AllGather(all, mine);
        var flat = all.data<long>().ToArray();
        return Enumerable.Range(0, world.Size)
            .Select(r => flat.Skip(r * dataParallel.Size).Take(dataParallel.Size).Select(x => (int)x).ToArray())
            .DistinctBy(g => string.Join(",", g))
            .OrderBy(g => g.Min())
            .ToList();
    }
}
