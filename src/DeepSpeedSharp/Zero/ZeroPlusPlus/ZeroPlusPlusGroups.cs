using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Utils;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// The groups ZeRO++ runs its collectives on, derived from the data-parallel group and the host of every rank (the
/// launcher's host id: the hostfile's names, DSS_HOST_ID, or the machine name):
/// <list type="bullet">
/// <item>hpZ: consecutive blocks of <c>zero_hpz_partition_size</c> data-parallel ranks (DeepSpeed's layout), each of
/// which must lie on one host;</item>
/// <item>qgZ: the data-parallel ranks of each host (intra) and, for each position on a host, one rank per host (inter).</item>
/// </list>
/// Building them is collective over the world: every rank learns every data-parallel group, so that all ranks create
/// the same groups in the same order.
/// </summary>
internal sealed class ZeroPlusPlusGroups : IDisposable
{
    private ZeroPlusPlusGroups(ProcessGroup? secondary, QuantizedGradientReduceScatter? gradients, bool quantizeWeights, List<ProcessGroup> owned)
    {
        Secondary = secondary;
        Gradients = gradients;
        QuantizeWeights = quantizeWeights;
        this.owned = owned;
    }

    private readonly List<ProcessGroup> owned;

    /// <summary>hpZ's secondary group (this rank's block of the data-parallel group), or null when hpZ is off.</summary>
    public ProcessGroup? Secondary { get; }

    /// <summary>qgZ's hierarchical quantized reduce-scatter, or null when qgZ is off.</summary>
    public QuantizedGradientReduceScatter? Gradients { get; }

    /// <summary>qwZ: the forward all-gather of primary partitions is int8-quantized.</summary>
    public bool QuantizeWeights { get; }

    /// <summary>True when any ZeRO++ feature is on.</summary>
    public bool Any => Secondary is not null || Gradients is not null || QuantizeWeights;

    /// <summary>No ZeRO++.</summary>
    public static ZeroPlusPlusGroups None { get; } = new(null, null, false, new());

    /// <summary>Builds what <paramref name="zero"/> asks for over the data-parallel group <paramref name="dp"/>.</summary>
    public static ZeroPlusPlusGroups Create(ZeroConfig zero, ProcessGroup dp)
    {
        int hpz = zero.ZeroHpzPartitionSize;
        bool qgz = zero.ZeroQuantizedGradients, qwz = zero.ZeroQuantizedWeights;
        if (hpz <= 1 && !qgz && !qwz) return None;
        if (dp.Size == 1)
        {
            Log.Info("ZeRO++: the data-parallel group has one rank, so there is nothing to partition hierarchically or to send quantized");
            return None;
        }
        // That hpz divides the data-parallel size is the layout's rule (Topology.ParallelLayout.Validate), checked at Initialize.
        var groups = AllDataParallelGroups(dp);
        var hosts = Dist.Hosts;
        var owned = new List<ProcessGroup>();
        ProcessGroup? secondary = null;
        if (hpz > 1)
        {
            var blocks = groups.SelectMany(g => g.Chunk(hpz)).Select(b => (IReadOnlyList<int>)b).ToList();
            foreach (var b in blocks)
                if (b.Select(r => hosts[r]).Distinct().Count() > 1)
                    throw new DeepSpeedConfigException($"zero_optimization.zero_hpz_partition_size = {hpz} puts ranks [{string.Join(",", b)}] in one secondary group, " +
                                                       $"but they run on hosts {string.Join(", ", b.Select(r => hosts[r]).Distinct())}; hpZ keeps a model copy per host: set it to the number of ranks per host or a divisor of it");
            secondary = Dist.NewGroups(blocks);
            owned.Add(secondary);
        }
        QuantizedGradientReduceScatter? gradients = null;
        if (qgz) gradients = HierarchicalGradients(groups, hosts, dp, owned);
        var parts = new List<string>();
        if (secondary is not null) parts.Add($"hpZ secondary groups of {hpz} ranks on one host");
        if (qwz) parts.Add("int8 weight all-gather (qwZ)");
        if (gradients is not null) parts.Add("int8 hierarchical gradient reduce-scatter (qgZ)");
        Log.Info("ZeRO++: " + string.Join("; ", parts));
        return new ZeroPlusPlusGroups(secondary, gradients, qwz, owned);
    }

    /// <summary>Every data-parallel group of the world (as global ranks in group order), in order of their lowest rank.</summary>
    private static List<int[]> AllDataParallelGroups(ProcessGroup dp)
    {
        var world = Dist.World;
        using var size = tensor(new long[] { dp.Size, -dp.Size });
        world.AllReduce(size, ReduceOp.Max);
        if (size[0].item<long>() != -size[1].item<long>())
            throw new InvalidOperationException("ZeRO++: the data-parallel groups of the ranks have different sizes");
        using var mine = tensor(dp.GlobalRanks.Select(r => (long)r).ToArray());
        using var all = empty(dp.Size * world.Size, ScalarType.Int64);
        world.AllGather(all, mine);
        var flat = all.data<long>().ToArray();
        return Enumerable.Range(0, world.Size)
            .Select(r => flat.Skip(r * dp.Size).Take(dp.Size).Select(x => (int)x).ToArray())
            .DistinctBy(g => string.Join(",", g))
            .OrderBy(g => g.Min())
            .ToList();
    }

    private static QuantizedGradientReduceScatter HierarchicalGradients(List<int[]> groups, IReadOnlyList<string> hosts, ProcessGroup dp, List<ProcessGroup> owned)
    {
        // Per data-parallel group: its ranks per host (ascending, as groups order their members), or one "host" holding
        // them all when hosts have different numbers of ranks (then the reduce-scatter is one quantized hop).
        List<int[]> ByHost(int[] g)
        {
            var byHost = g.GroupBy(r => hosts[r]).Select(h => h.Order().ToArray()).ToList();
            return byHost.All(h => h.Length == byHost[0].Length) ? byHost : new List<int[]> { g.Order().ToArray() };
        }
        var layouts = groups.Select(ByHost).ToList();
        var mineLayout = ByHost(dp.GlobalRanks.ToArray());
        if (mineLayout.Count == 1 && dp.GlobalRanks.Select(r => hosts[r]).Distinct().Count() > 1)
            Log.Warn("ZeRO++ qgZ: the hosts hold different numbers of data-parallel ranks, so gradients are reduced in one quantized hop over the whole group");
        var intra = Dist.NewGroups(layouts.SelectMany(l => l).Select(h => (IReadOnlyList<int>)h).ToList());
        owned.Add(intra);
        var interLists = layouts.SelectMany(l => Enumerable.Range(0, l[0].Length).Select(j => (IReadOnlyList<int>)l.Select(h => h[j]).Order().ToArray())).ToList();
        var inter = Dist.NewGroups(interLists);
        owned.Add(inter);
        // ownersByLocal[j][h]: the data-parallel rank of position h of the inter group of local index j.
        int locals = mineLayout[0].Length;
        var owners = new int[locals][];
        for (int j = 0; j < locals; j++)
            owners[j] = mineLayout.Select(h => h[j]).Order().Select(dp.GetGroupRank).ToArray();
        return new QuantizedGradientReduceScatter(intra, inter, owners);
    }

    public void Dispose()
    {
        foreach (var g in owned) g.Dispose();
    }
}
